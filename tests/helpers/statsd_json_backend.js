/* A statsd (npm 0.9) backend for meshfed's differential tests: one JSON line per flush.
 * Config: jsonBackend: { path: "/abs/file.jsonl" }. Sets are written as their sizes. */
const fs = require('fs');

exports.init = function (startupTime, config, events) {
  const path = config.jsonBackend.path;
  events.on('flush', function (timestamp, metrics) {
    const sets = {};
    for (const key in metrics.sets) {
      sets[key] = metrics.sets[key].size();
    }
    const line = {
      timestamp: timestamp,
      now_ms: Date.now(),
      counters: metrics.counters,
      counter_rates: metrics.counter_rates,
      gauges: metrics.gauges,
      timer_data: metrics.timer_data,
      sets: sets,
    };
    fs.appendFileSync(path, JSON.stringify(line) + '\n');
  });
  return true;
};
