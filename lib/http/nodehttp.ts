// node:http without undici. In Node 24 an ES module import of node:http (even of one name)
// builds the module's namespace, which reads every export, and three of them (WebSocket,
// CloseEvent, MessageEvent) are getters that load undici: about 15 MiB of resident memory
// in a process that never uses them (bench/ANALYSIS.md, the thirteenth session).
// process.getBuiltinModule hands back the module's exports object and touches nothing else.
// Import createServer, request and Agent from here; types may still come from node:http
// (`import type`), which loads nothing. The lint config holds every program to this.
const http = process.getBuiltinModule("node:http");

export const createServer = http.createServer;
export const request = http.request;
export const Agent = http.Agent;
export type Agent = InstanceType<typeof http.Agent>;
