// Drives the npm fluent-logger (3.x) against meshfed's Forward receiver for the integration tests.
// Usage: node forward_driver.js '<json plan>'; prints one JSON line {"acked": n, "errors": m}.
// Plan: {port, mode, tag, count, sharedKey?, clientHostname?, username?, password?,
//        ackTimeoutMs, retryDelayMs, deadlineMs, eventTime}
// Every event is emitted with requireAckResponse; an event whose ack fails (timeout, closed
// connection) is emitted again after retryDelayMs (the application-level retry the logger
// leaves to its user), until it is acked or the deadline passes.
'use strict';

const path = require('path');
const modules = process.env.NODE_PATH || path.join(process.env.HOME, '.cache/meshfed/node/node_modules');
const logger = require(path.join(modules, 'fluent-logger'));

const plan = JSON.parse(process.argv[2]);
const options = {
  host: '127.0.0.1',
  port: plan.port,
  eventMode: plan.mode,
  requireAckResponse: true,
  ackResponseTimeout: plan.ackTimeoutMs || 2000,
  reconnectInterval: plan.retryDelayMs || 300,
  flushInterval: 20,
  timeout: 5.0,
  internalLogger: { info() {}, error() {} },
};
if (plan.sharedKey) {
  options.security = {
    clientHostname: plan.clientHostname || 'node-client',
    sharedKey: plan.sharedKey,
    username: plan.username || '',
    password: plan.password || '',
  };
}
const sender = logger.createFluentSender(plan.tag, options);
sender.on('error', () => {});

let acked = 0;
let errors = 0;
const done = new Set();

function finish() {
  process.stdout.write(JSON.stringify({ acked: acked, errors: errors }) + '\n');
  process.exit(0);
}

function emit(i) {
  const time = plan.eventTime
    ? new logger.EventTime(Math.floor(Date.now() / 1000), 1000 * i + 7)
    : Math.floor(Date.now() / 1000);
  sender.emit('e', { message: `${plan.tag}-${i}`, seq: i }, time, (err) => {
    if (done.has(i)) return;
    if (err) {
      errors += 1;
      setTimeout(() => emit(i), plan.retryDelayMs || 300);
      return;
    }
    done.add(i);
    acked += 1;
    if (acked === plan.count) sender.end(null, null, finish);
  });
}

setTimeout(finish, plan.deadlineMs || 20000);
for (let i = 0; i < plan.count; i += 1) emit(i);
