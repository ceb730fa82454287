// An app run by `sidekey exec`: Node 20's own fetch ignores HTTPS_PROXY
// (NODE_USE_ENV_PROXY needs Node 24), so it installs undici's
// EnvHttpProxyAgent, which reads HTTP(S)_PROXY and NO_PROXY; the CA comes from
// NODE_EXTRA_CA_CERTS. argv[2] is a URL, argv[3] a file that gets a copy of
// /proc/self/environ. Prints { status, body }.
import { fetch, EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';
import { readFileSync, writeFileSync } from 'node:fs';

// Read, not copied: /proc files report size 0, so a file copy is empty.
writeFileSync(process.argv[3], readFileSync('/proc/self/environ'));
const agent = new EnvHttpProxyAgent();
setGlobalDispatcher(agent);
const r = await fetch(process.argv[2]);
console.log(JSON.stringify({ status: r.status, body: await r.text() }));
await agent.close();
