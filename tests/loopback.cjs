// loopback.cjs: preload (node --require) that makes every server in this process listen on 127.0.0.1 only.
// Test servers from npm call listen(port) with no host (all interfaces); the tests must stay on loopback.
const net = require("net");
const orig = net.Server.prototype._listen2;
net.Server.prototype._listen2 = function (address, port, addressType, backlog, fd, flags) {
  if (fd === undefined || fd === null || fd < 0) {
    address = addressType === 6 ? "::1" : "127.0.0.1";
    addressType = addressType === 6 ? 6 : 4;
  }
  return orig.call(this, address, port, addressType, backlog, fd, flags);
};
