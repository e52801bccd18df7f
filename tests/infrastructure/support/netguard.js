// Preloaded into node (NODE_OPTIONS=--require) during the offline-synth test:
// records and refuses every outbound connection or DNS lookup.
const fs = require("fs");
const net = require("net");
const dns = require("dns");
const log = process.env.NETGUARD_LOG;
function refuse(what) {
  fs.appendFileSync(log, `node ${what}\n`);
  throw new Error(`network access during synth: ${what}`);
}
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const target = args[0];
  if (target && typeof target === "object" && target.path) return connect.apply(this, args); // local IPC
  if (typeof target === "string" && !/^\d+$/.test(target)) return connect.apply(this, args); // unix socket path
  refuse(`connect ${JSON.stringify(args[0])}`);
};
dns.lookup = (host) => refuse(`dns ${host}`);
dns.resolve = (host) => refuse(`dns ${host}`);
