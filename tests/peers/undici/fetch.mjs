// Node fetch through undici's ProxyAgent: argv[2] is a JSON job
// { proxy, ca, urls: [..] }; prints one JSON line
// { results: [{ status, body }], connections } where connections counts the
// CONNECT tunnels the agent opened (a kept tunnel is opened once).
import { fetch, ProxyAgent, Pool } from 'undici';
import { readFileSync } from 'node:fs';

const job = JSON.parse(process.argv[2]);
let connections = 0;
const agent = new ProxyAgent({
  uri: job.proxy,
  requestTls: { ca: readFileSync(job.ca, 'utf8') },
  // counts each connection made to the proxy: one per CONNECT tunnel
  clientFactory: (origin, opts) => {
    const inner = opts.connect;
    return new Pool(origin, {
      ...opts,
      connect: (o, cb) => {
        connections += 1;
        return inner(o, cb);
      },
    });
  },
});
const results = [];
for (const url of job.urls) {
  const r = await fetch(url, { dispatcher: agent });
  results.push({ status: r.status, body: await r.text() });
}
await agent.close();
console.log(JSON.stringify({ results, connections }));
