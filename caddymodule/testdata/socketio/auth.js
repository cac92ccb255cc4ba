// Connects to impetus_events over WebSocket only, as a browser must, with
// the API key in the Socket.IO handshake, and prints what happened as JSON:
// {"connected", "error", "model_status"} (the first model_status event).
// Usage: node auth.js http://127.0.0.1:PORT MODE [KEY]
//   token   auth: { token: KEY }
//   bearer  auth: { Authorization: 'Bearer ' + KEY }
//   none    no credentials
//   query   the key in the URL query string (?token=KEY), which must not count
'use strict';
const { io } = require('socket.io-client');

const [url, mode, key] = process.argv.slice(2);
const options = { reconnection: false, timeout: 10000, transports: ['websocket'] };
if (mode === 'token') options.auth = { token: key };
if (mode === 'bearer') options.auth = { Authorization: 'Bearer ' + key };
if (mode === 'query') options.query = { token: key };
const socket = io(url, options);
const seen = { connected: false, mode };
const timer = setTimeout(() => finish('timed out'), 15000);

function finish(error) {
  clearTimeout(timer);
  if (error) seen.error = error;
  process.stdout.write(JSON.stringify(seen) + '\n');
  socket.close();
  process.exit(0);
}

socket.on('connect', () => { seen.connected = true; });
socket.on('connect_error', (err) => finish('connect_error: ' + err.message));
socket.on('model_status', (m) => { seen.model_status = m; finish(); });
