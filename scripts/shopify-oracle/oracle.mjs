// Shopify's own library as a test oracle: the test suite pipes JSON cases on stdin and reads
// one JSON result per case on stdout, so the devshop's and the app's signatures are checked
// against @shopify/shopify-api (pinned to 12.3.0, the last release that runs on Node 20).
//
// Input:  {"cases": [case, ...]}  Output: {"results": [result, ...]} in the same order.
// Every case carries {"api_key", "secret"} and one "kind":
//   validate_hmac   {query: {k: "v" | ["v1", "v2"]}, signator: "admin" | "appProxy", now?}
//                   → {ok: true, valid: bool} (or {ok: false, error} when the library throws,
//                     e.g. a timestamp outside its ±90 s tolerance)
//   webhook         {url, raw_body_b64, headers: {name: value}}
//                   → {ok: true, result: <shopify.webhooks.validate() answer>}
//   session_token   {token, check_audience?, now?}
//                   → {ok: true, payload} or {ok: false, error}
// "now" (Unix seconds) pins Date.now, which validateHmac's timestamp check reads; jose reads
// the clock through `new Date()`, so session tokens are minted for the real current time.
import '@shopify/shopify-api/adapters/web-api';
import {shopifyApi, LogSeverity} from '@shopify/shopify-api';

const realDateNow = Date.now;
const apis = new Map();

function apiFor(apiKey, secret) {
  const cacheKey = JSON.stringify([apiKey, secret]);
  if (!apis.has(cacheKey)) {
    apis.set(
      cacheKey,
      shopifyApi({
        apiKey,
        apiSecretKey: secret,
        hostName: 'app.example.com',
        apiVersion: '2024-10',
        isEmbeddedApp: true,
        // Errors only: the library logs every validation at debug level.
        logger: {level: LogSeverity.Error, log: async () => {}},
      }),
    );
  }
  return apis.get(cacheKey);
}

async function runCase(c) {
  const shopify = apiFor(c.api_key, c.secret);
  Date.now = c.now ? () => c.now * 1000 : realDateNow;
  try {
    switch (c.kind) {
      case 'validate_hmac': {
        const valid = await shopify.utils.validateHmac(c.query, {signator: c.signator || 'admin'});
        return {ok: true, valid};
      }
      case 'webhook': {
        // Byte-exact: the body travels base64-encoded so no newline or encoding is lost.
        const rawBody = Buffer.from(c.raw_body_b64, 'base64').toString('utf8');
        const rawRequest = new Request(c.url || 'https://app.example.com/webhooks/', {
          method: 'POST',
          body: rawBody,
          headers: c.headers,
        });
        const result = await shopify.webhooks.validate({rawBody, rawRequest});
        return {ok: true, result};
      }
      case 'session_token': {
        const payload = await shopify.session.decodeSessionToken(c.token, {
          checkAudience: c.check_audience !== false,
        });
        return {ok: true, payload};
      }
      default:
        return {ok: false, error: `unknown kind ${c.kind}`};
    }
  } catch (error) {
    return {ok: false, error: `${error.name}: ${error.message}`};
  } finally {
    Date.now = realDateNow;
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const input = JSON.parse(await readStdin());
const results = [];
for (const c of input.cases) {
  results.push(await runCase(c));
}
process.stdout.write(JSON.stringify({results}) + '\n');
