// Connects to the impetus_events handler with the official Socket.IO client
// and default options (long-polling first, then the WebSocket upgrade), waits
// for one hardware_metrics and one model_status event, and prints what it saw
// as JSON on stdout. Usage: node client.js http://127.0.0.1:PORT [websocket]
// (the optional second argument connects with transports: ['websocket'])
'use strict';
const { io } = require('socket.io-client');

const url = process.argv[2];
const websocketOnly = process.argv[3] === 'websocket';
const seen = { connected: false, upgraded: false, first_transport: null };
const options = { reconnection: false, timeout: 10000 };
if (websocketOnly) options.transports = ['websocket'];
const socket = io(url, options);

const timer = setTimeout(() => finish('timed out'), 15000);

function finish(error) {
  clearTimeout(timer);
  if (error) seen.error = error;
  seen.final_transport = socket.io.engine ? socket.io.engine.transport.name : null;
  process.stdout.write(JSON.stringify(seen) + '\n');
  socket.close();
  process.exit(error ? 1 : 0);
}

function maybeDone() {
  if (seen.hardware_metrics && seen.model_status && (seen.upgraded || websocketOnly)) finish();
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
  // A client event the server ignores, sent with an acknowledgement.
  socket.emit('subscribe', { room: 'metrics' }, () => { seen.subscribe_acked = true; });
});
socket.on('connect_error', (err) => finish('connect_error: ' + err.message));
socket.on('hardware_metrics', (m) => { if (!seen.hardware_metrics) seen.hardware_metrics = m; maybeDone(); });
socket.on('model_status', (m) => { if (!seen.model_status) seen.model_status = m; maybeDone(); });
