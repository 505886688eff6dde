// A relying party built on openid-client (OpenID Certified), with all its validations on:
// discovery, PKCE S256, state, nonce, RFC 9207 `iss`, ID token signature and claims, userinfo
// subject match, max_age/auth_time. The browser part is played by the Rust test that spawned
// this script: each authorization URL goes out on stdout as {"authorize": url} and the callback
// URL comes back on stdin as {"callback": url}. Only plain http is allowed (loopback test).
import * as client from 'openid-client';
import readline from 'node:readline';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function callbackFor(url) {
  say({ authorize: url.href });
  const { value, done } = await lines.next();
  if (done) throw new Error('no callback from the test');
  return new URL(JSON.parse(value).callback);
}

const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  undefined,
  client.ClientSecretBasic(CLIENT_SECRET),
  { execute: [client.allowInsecureRequests] },
);

async function signIn(extra) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  };
  const callback = await callbackFor(client.buildAuthorizationUrl(config, params));
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
    maxAge: extra.max_age ? Number(extra.max_age) : undefined,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return { sub: claims.sub, sid: claims.sid, auth_time: claims.auth_time, name: userinfo.name, email: userinfo.email };
}

try {
  const first = await signIn({});
  const silent = await signIn({ prompt: 'none' });
  const fresh = await signIn({ prompt: 'none', max_age: '3600' });
  say({ result: { first, silent, fresh } });
  process.exit(0);
} catch (e) {
  say({ error: `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}${e.cause ? ` cause: ${JSON.stringify(e.cause)}` : ''}` });
  process.exit(1);
}
