// Streams events through the npm fluent-logger (3.x) at a steady rate and reports, event by event,
// which ones meshfed acknowledged: the sender side of the kill-under-load tests.
// Usage: node forward_stream_driver.js '<json plan>'
// Plan: {port, tag, count, perTick, tickMs, deadlineMs}
// Output (stdout, one line each): "a <seq> <seq> ..." for events whose ack arrived (written at
// least every 20 ms), then "end <emitted>" when the count or the deadline is reached, on SIGTERM,
// or after "crash <message>" if the logger threw.
// Events are sent in PackedForward mode with requireAckResponse: one chunk id per flush, many
// events per chunk, and only an ack with that chunk id counts. No event is emitted twice (no
// application-level retry), so an event stored twice would be the receiver's doing.
// Bodies are `<tag>#<seq, 5 digits>` so that a query can select a block of them by prefix.
'use strict';

const path = require('path');
const modules = process.env.NODE_PATH || path.join(process.env.HOME, '.cache/meshfed/node/node_modules');
const logger = require(path.join(modules, 'fluent-logger'));

const plan = JSON.parse(process.argv[2]);
const sender = logger.createFluentSender(plan.tag, {
  host: '127.0.0.1',
  port: plan.port,
  eventMode: 'PackedForward',
  requireAckResponse: true,
  ackResponseTimeout: 3000,
  reconnectInterval: 200,
  flushInterval: 10,
  timeout: 5.0,
  internalLogger: { info() {}, error() {} },
});
sender.on('error', () => {});

const acked = new Set();
let pending = [];
let emitted = 0;
let finished = false;

function flush() {
  // stdout to a pipe is synchronous on Linux: a line written here is never lost on exit
  if (pending.length > 0) {
    process.stdout.write('a ' + pending.join(' ') + '\n');
    pending = [];
  }
}

function finish() {
  if (finished) return;
  finished = true;
  flush();
  process.stdout.write('end ' + emitted + '\n');
  process.exit(0);
}

function emit(seq) {
  const body = plan.tag + '#' + String(seq).padStart(5, '0');
  sender.emit('e', { message: body, seq: seq }, (err) => {
    if (err || acked.has(seq)) return;
    acked.add(seq);
    pending.push(seq);
  });
}

const ticker = setInterval(() => {
  for (let i = 0; i < plan.perTick && emitted < plan.count; i += 1) {
    emit(emitted);
    emitted += 1;
  }
  if (emitted >= plan.count) clearInterval(ticker);
}, plan.tickMs);
setInterval(flush, 20);
setTimeout(finish, plan.deadlineMs);
process.on('SIGTERM', finish);
// fluent-logger 3.x throws from a write callback when the collector's socket closes during the
// write (`this._socket` is already null): the stream ends there, and what was acked stands.
process.on('uncaughtException', (err) => {
  process.stdout.write('crash ' + String(err && err.message).replace(/\s+/g, ' ') + '\n');
  finish();
});
