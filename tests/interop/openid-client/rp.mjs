// A relying party built on openid-client (OpenID Certified), with all its validations on:
// discovery, PKCE S256, state, nonce, RFC 9207 `iss`, ID token signature and claims, userinfo
// subject match, max_age/auth_time. The browser part is played by the Rust test that spawned
// this script: each authorization URL goes out on stdout as {"authorize": url} and the callback
// URL comes back on stdin as {"callback": url}. Only plain http is allowed (loopback test).
// Then: refresh (with ID token validation), introspection, revocation, and client credentials
// for a second, machine client (SERVICE_ID / SERVICE_SECRET); and an access token for an API
// (RESOURCE), named with `resource` (RFC 8707) at the authorization and token endpoints. And the
// device flow (RFC 8628) for a public client (DEVICE_ID): each device authorization goes out as
// {"device": {...}, "answer": "allow" | "deny"} for the test to answer in its browser, while
// openid-client polls. And pushed (RFC 9126) and signed (RFC 9101) authorization requests: the
// RP's public key goes out first as {"jwks": {...}}, for the test to register, which answers
// {"registered": true}. And DPoP-bound tokens (RFC 9449), and EdDSA ID tokens for a second
// client (EDDSA_ID / EDDSA_SECRET).
import * as client from 'openid-client';
import readline from 'node:readline';

const {
  ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SERVICE_ID, SERVICE_SECRET, RESOURCE, DEVICE_ID,
  EDDSA_ID, EDDSA_SECRET,
} = process.env;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function callbackFor(url) {
  say({ authorize: url.href });
  const { value, done } = await lines.next();
  if (done) throw new Error('no callback from the test');
  return new URL(JSON.parse(value).callback);
}

// The key request objects are signed with (RFC 9101), registered by the test.
const { privateKey, publicKey } = await crypto.subtle.generateKey(
  { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
const publicJwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'rp-1', alg: 'ES256', use: 'sig' };
say({ jwks: { keys: [publicJwk] } });
await lines.next();
const signingKey = { key: privateKey, kid: 'rp-1' };

const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  undefined,
  client.ClientSecretBasic(CLIENT_SECRET),
  { execute: [client.allowInsecureRequests] },
);

// One authorization and code exchange; `extra` adds authorization parameters. With
// `extra.resource` (RFC 8707) the token request names it too, and the answer is the API's
// access token as the API would read it (userinfo is the provider's, not the API's).
async function signIn(extra, how, cfg = config) {
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
  let url;
  if (how === 'par') {
    url = await client.buildAuthorizationUrlWithPAR(cfg, params);
  } else if (how === 'jar') {
    url = await client.buildAuthorizationUrlWithJAR(cfg, params, signingKey);
  } else if (how === 'jar+par') {
    const signed = await client.buildAuthorizationUrlWithJAR(cfg, params, signingKey);
    url = await client.buildAuthorizationUrlWithPAR(cfg, signed.searchParams);
  } else {
    url = client.buildAuthorizationUrl(cfg, params);
  }
  const sent = [...url.searchParams.keys()].sort();
  const callback = await callbackFor(url);
  const tokens = await client.authorizationCodeGrant(cfg, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
    maxAge: extra.max_age ? Number(extra.max_age) : undefined,
  }, extra.resource ? { resource: extra.resource } : undefined);
  if (extra.resource) {
    const [header, payload] = tokens.access_token.split('.').slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    return { typ: header.typ, aud: payload.aud, scope: payload.scope, response_scope: tokens.scope };
  }
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  return {
    sub: claims.sub, sid: claims.sid, auth_time: claims.auth_time, name: userinfo.name, email: userinfo.email,
    access_token: tokens.access_token, refresh_token: tokens.refresh_token, sent,
    id_token_alg: JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url').toString()).alg,
  };
}

async function lifecycle(grant) {
  const refreshed = await client.refreshTokenGrant(config, grant.refresh_token);
  const refreshedSub = refreshed.claims()?.sub;
  const introspected = await client.tokenIntrospection(config, refreshed.access_token);
  await client.tokenRevocation(config, refreshed.refresh_token);
  let afterRevocation = 'accepted';
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token);
  } catch (e) {
    afterRevocation = e.error ?? e.code ?? e.message;
  }
  const inactive = await client.tokenIntrospection(config, refreshed.access_token);
  const service = await client.discovery(new URL(ISSUER), SERVICE_ID, undefined,
    client.ClientSecretBasic(SERVICE_SECRET), { execute: [client.allowInsecureRequests] });
  const cc = await client.clientCredentialsGrant(service);
  const ccIntrospected = await client.tokenIntrospection(service, cc.access_token);
  return {
    rotated: refreshed.refresh_token !== grant.refresh_token,
    refreshed_sub: refreshedSub,
    introspected_active: introspected.active, introspected_client: introspected.client_id,
    after_revocation: afterRevocation, revoked_access_active: inactive.active,
    client_credentials_sub: ccIntrospected.sub, client_credentials_active: ccIntrospected.active,
    client_credentials_has_refresh: cc.refresh_token !== undefined,
  };
}

// A sign-in whose tokens are bound to a DPoP key (RFC 9449): openid-client answers the token
// endpoint's use_dpop_nonce itself, and presents the token to userinfo with a proof. With
// `how` 'par', the request is pushed with a proof, which binds the code to the key (§10.1):
// a proof by another key is refused at the token endpoint (`other_key`), spending nothing.
async function dpopRound(how) {
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair());
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: REDIRECT_URI, scope: 'openid profile email', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  };
  const url = how === 'par'
    ? await client.buildAuthorizationUrlWithPAR(config, params, { DPoP })
    : client.buildAuthorizationUrl(config, params);
  const callback = await callbackFor(url);
  const redeem = (handle) => client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP: handle });
  let otherKey;
  if (how === 'par') {
    const other = client.getDPoPHandle(config, await client.randomDPoPKeyPair());
    try {
      await redeem(other);
      otherKey = 'accepted';
    } catch (e) {
      otherKey = e.error ?? e.code ?? e.message;
    }
  }
  const tokens = await redeem(DPoP);
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  const introspected = await client.tokenIntrospection(config, refreshed.access_token);
  let asBearer = 'accepted';
  try {
    await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  } catch (e) {
    // The challenge's error (RFC 6750 §3), as openid-client parsed WWW-Authenticate.
    asBearer = `${e.status} ${e.cause?.[0]?.parameters?.error ?? e.error ?? e.code}`;
  }
  return {
    token_type: tokens.token_type, sub: claims.sub, name: userinfo.name,
    refreshed_type: refreshed.token_type, introspected_type: introspected.token_type,
    bound: typeof introspected.cnf?.jkt === 'string', as_bearer: asBearer, other_key: otherKey,
  };
}

// One device authorization, answered `answer` by the person; what openid-client obtained, or
// the error it ended with.
async function device(answer) {
  const config = await client.discovery(new URL(ISSUER), DEVICE_ID, undefined, client.None(),
    { execute: [client.allowInsecureRequests] });
  const started = await client.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' });
  say({
    device: { user_code: started.user_code, verification_uri_complete: started.verification_uri_complete },
    answer,
  });
  try {
    const tokens = await client.pollDeviceAuthorizationGrant(config, started);
    const claims = tokens.claims();
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    return {
      sub: claims.sub, name: userinfo.name, scope: tokens.scope,
      refreshed_sub: refreshed.claims()?.sub,
    };
  } catch (e) {
    return { error: e.error ?? e.code ?? e.message };
  }
}

try {
  const first = await signIn({});
  const silent = await signIn({ prompt: 'none' });
  const fresh = await signIn({ prompt: 'none', max_age: '3600' });
  const tokens = await lifecycle(fresh);
  const api = await signIn({ scope: 'openid notes:read', resource: RESOURCE });
  const pushed = await signIn({}, 'par');
  const signed = await signIn({}, 'jar');
  const signedAndPushed = await signIn({}, 'jar+par');
  for (const round of [pushed, signed, signedAndPushed]) {
    delete round.access_token;
    delete round.refresh_token;
  }
  const dpop = await dpopRound();
  const dpopPushed = await dpopRound('par');
  // An app registered for EdDSA ID tokens (RFC 8037): openid-client expects and verifies them.
  const eddsaConfig = await client.discovery(new URL(ISSUER), EDDSA_ID,
    { id_token_signed_response_alg: 'EdDSA' }, client.ClientSecretBasic(EDDSA_SECRET),
    { execute: [client.allowInsecureRequests] });
  const eddsa = await signIn({}, undefined, eddsaConfig);
  delete eddsa.access_token;
  delete eddsa.refresh_token;
  const deviceAllowed = await device('allow');
  const deviceDenied = await device('deny');
  for (const round of [first, silent, fresh]) {
    delete round.access_token;
    delete round.refresh_token;
  }
  say({ result: { first, silent, fresh, tokens, api, device: { allowed: deviceAllowed, denied: deviceDenied }, pushed, signed, signedAndPushed, dpop, dpopPushed, eddsa } });
  process.exit(0);
} catch (e) {
  say({ error: `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}${e.cause ? ` cause: ${JSON.stringify(e.cause)}` : ''}` });
  process.exit(1);
}
