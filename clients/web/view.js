// view.js - shows /mjpeg?session=ID in an <img> and reconnects when the
// stream ends (the session closed, the server restarted): the viewer keeps
// showing the last frame meanwhile, then picks the session up again.
const session = new URLSearchParams(location.search).get('session');
const img = document.getElementById('frame');
const message = document.getElementById('message');
const RETRY_MS = 2000;

function show(text) {
  message.textContent = text;
  message.hidden = !text;
}

function connect() {
  // A fresh query string defeats any cached, finished stream.
  img.src = `/mjpeg?session=${encodeURIComponent(session)}&t=${Date.now()}`;
}

if (!session) {
  show('Add ?session=ID to the address (the demo page shows the id).');
} else {
  img.addEventListener('load', () => show(''));
  img.addEventListener('error', () => {
    show(`Session ${session} is not streaming; retrying…`);
    setTimeout(connect, RETRY_MS);
  });
  connect();
}
