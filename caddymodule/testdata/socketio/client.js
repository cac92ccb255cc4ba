// Connects to the impetus_events handler with the official Socket.IO client
// and default options (long-polling first, then the WebSocket upgrade) and
// prints what it saw as JSON on stdout.
// Usage: node client.js http://127.0.0.1:PORT [websocket|rooms]
//   (none)     waits for one event of each type: model_status,
//              hardware_metrics, download_progress, inference_stats, and
//              the upgrade to WebSocket
//   websocket  the same, connecting with transports: ['websocket']
//   rooms      subscribes to "hardware" only, then counts what arrives for
//              a second: hardware_metrics yes, inference_stats no; then also
//              subscribes to "inference" and waits for an inference_stats
'use strict';
const { io } = require('socket.io-client');

const url = process.argv[2];
const mode = process.argv[3] || 'all';
const websocketOnly = mode === 'websocket';
const seen = { connected: false, upgraded: false, first_transport: null, mode };
const options = { reconnection: false, timeout: 10000 };
if (websocketOnly) options.transports = ['websocket'];
const socket = io(url, options);

const timer = setTimeout(() => finish('timed out'), 20000);

function finish(error) {
  clearTimeout(timer);
  if (error) seen.error = error;
  seen.final_transport = socket.io.engine ? socket.io.engine.transport.name : null;
  process.stdout.write(JSON.stringify(seen) + '\n');
  socket.close();
  process.exit(error ? 1 : 0);
}

const types = ['model_status', 'hardware_metrics', 'download_progress', 'inference_stats'];

function maybeDone() {
  if (mode === 'rooms') return;
  if (types.every((t) => seen[t]) && (seen.upgraded || websocketOnly)) finish();
}

// The manager opens the Engine.IO session before any upgrade can start.
socket.io.on('open', () => {
  seen.first_transport = socket.io.engine.transport.name;
  socket.io.engine.once('upgrade', (t) => {
    seen.upgraded = t.name === 'websocket';
    maybeDone();
  });
});
socket.on('connect', () => {
  seen.connected = true;
  seen.socket_id = socket.id;
  if (mode === 'rooms') subscribeHardwareOnly();
});
socket.on('connect_error', (err) => finish('connect_error: ' + err.message));
for (const t of types) {
  socket.on(t, (m) => { if (!seen[t]) seen[t] = m; maybeDone(); });
}

// Rooms: after the server acknowledges "subscribe hardware", count events
// for one second; then join "inference" too and wait for inference_stats.
function subscribeHardwareOnly() {
  const after = { hardware_metrics: 0, inference_stats: 0 };
  const count = (t) => () => { after[t]++; };
  socket.emit('subscribe', 'hardware', () => {
    seen.subscribe_acked = true;
    const onHW = count('hardware_metrics');
    const onInf = count('inference_stats');
    socket.on('hardware_metrics', onHW);
    socket.on('inference_stats', onInf);
    setTimeout(() => {
      seen.after_subscribe = Object.assign({}, after);
      socket.off('inference_stats', onInf);
      socket.emit('subscribe', { room: 'inference' }, () => {
        socket.once('inference_stats', () => {
          seen.inference_after_join = true;
          finish();
        });
      });
    }, 1000);
  });
}
