// Sign-in shared by the tablet app and the teacher view: Cognito's InitiateAuth
// (USER_PASSWORD_AUTH, over TLS on AWS) returns an ID token; every API call carries it as a
// bearer token, which the HTTP API's JWT authorizer checks. Settings come from config.json
// beside the page (the local runtime serves it; on AWS write it from the stack's outputs),
// query parameters override: ?api=URL&client=ID&region=R&cognito=URL.
"use strict";

const Auth = (() => {
  let token = null;
  let settings = null;

  async function config() {
    if (settings) return settings;
    let file = {};
    try {
      const res = await fetch("config.json", { cache: "no-store" });
      if (res.ok) file = await res.json();
    } catch (_) { /* no config.json: query parameters only */ }
    const q = new URLSearchParams(location.search);
    const region = q.get("region") || file.region || "us-east-1";
    settings = {
      api: q.get("api") || file.api || location.origin,
      clientId: q.get("client") || file.clientId || "",
      cognito: q.get("cognito") || file.cognitoEndpoint || `https://cognito-idp.${region}.amazonaws.com/`,
    };
    return settings;
  }

  async function signIn(username, password) {
    const cfg = await config();
    const res = await fetch(cfg.cognito, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSCognitoIdentityProviderService.InitiateAuth",
      },
      body: JSON.stringify({
        AuthFlow: "USER_PASSWORD_AUTH", ClientId: cfg.clientId,
        AuthParameters: { USERNAME: username, PASSWORD: password },
      }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok || !data.AuthenticationResult) {
      throw new Error(data.message || "sign-in failed: check your id and password");
    }
    token = data.AuthenticationResult.IdToken;
  }

  async function api(method, path, body) {
    const cfg = await config();
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(cfg.api + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(data.message || `HTTP ${res.status}`), { status: res.status });
    return data;
  }

  return { signIn, api, signedIn: () => token !== null };
})();
