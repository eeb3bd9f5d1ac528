// The console page (compute/templates/compute/console.html): fetch a one-time token,
// open the console proxy's WebSocket with it, show the screen (noVNC) or a terminal
// (xterm.js). Every (re)connect asks for a new token: a token works once.
import RFB from "../vendor/novnc/core/rfb.js";

const screen = document.getElementById("console-screen");
const statusLine = document.getElementById("console-status");
const reconnect = document.getElementById("console-reconnect");
const { protocol, tokenUrl, proxyUrl, csrf, styleNonce } = screen.dataset;
const XK_RETURN = 0xff0d;
let session = null; // {sendText(text), ctrlAltDel(), close()}

function say(text, kind = "") {
  statusLine.textContent = text;
  statusLine.dataset.kind = kind;
}

function websocketUrl(base, token) {
  let url = base;
  if (base.startsWith("/")) {
    url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + base;
  }
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function fetchToken() {
  if (!tokenUrl) {
    // A link from the API: the token is in the fragment, and works once.
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    history.replaceState(null, "", location.pathname + location.search);
    if (!token) throw new Error("This console link has been used. Ask for a new one.");
    return token;
  }
  const response = await fetch(tokenUrl, {
    method: "POST",
    headers: { "X-CSRFToken": csrf, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ protocol }),
    credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? body.error.message : `The console is not available (${response.status}).`);
  return body.token;
}

function ended(message) {
  say(message, "ended");
  reconnect.hidden = false;
  session = null;
}

// The proxy's first message is either console data (binary) or, for a hypervisor with its
// own console page (OpenStack: nova's noVNC), one text message {"redirect": url}.
function openChannel(url, onConsole) {
  const socket = new WebSocket(url, ["binary"]);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (first) => {
    if (typeof first.data === "string") {
      const redirect = JSON.parse(first.data).redirect;
      socket.onclose = null;
      say("Opening the hypervisor's console…");
      location.assign(redirect);
      return;
    }
    onConsole(socket);
    socket.onmessage(first); // the console's handler takes the first message too
  };
  socket.onclose = () => ended("The connection to the console was lost or refused.");
  return socket;
}

function openVnc(url) {
  screen.replaceChildren();
  let rfb = null;
  const socket = openChannel(url, (channel) => { rfb = vncClient(channel); });
  return {
    sendText(text) { if (rfb) rfb.sendText(text); },
    ctrlAltDel() { if (rfb) rfb.ctrlAltDel(); },
    close() { if (rfb) rfb.close(); else socket.close(); },
  };
}

function vncClient(channel) {
  const rfb = new RFB(screen, channel, { shared: true });
  rfb.scaleViewport = true;
  rfb.focusOnClick = true;
  rfb.addEventListener("connect", () => { say("Connected. Click the screen to type.", "ok"); rfb.focus(); });
  rfb.addEventListener("disconnect", (event) => {
    ended(event.detail.clean ? "The console session ended (the VM stopped, or the session was closed)."
      : "The connection to the console was lost or refused.");
  });
  rfb.addEventListener("securityfailure", (event) => ended(`The console refused the connection: ${event.detail.reason || "security failure"}.`));
  rfb.addEventListener("desktopname", (event) => { document.title = `${event.detail.name} · Console`; });
  return {
    sendText(text) {
      for (const char of text) {
        const code = char.codePointAt(0);
        if (char === "\n") rfb.sendKey(XK_RETURN, "Enter");
        else if (code >= 0x20 && code <= 0x7e) rfb.sendKey(code);
        else if (code > 0xff) rfb.sendKey(0x01000000 + code);
        else rfb.sendKey(code);
      }
    },
    ctrlAltDel() { rfb.sendCtrlAltDel(); },
    close() { rfb.disconnect(); },
  };
}

// xterm.js adds <style> elements; the page's Content-Security-Policy admits only those
// carrying its nonce (compute/console_views.py console_policy), so each gets it.
function nonceStyles(nonce) {
  const create = document.createElement.bind(document);
  document.createElement = (tag, options) => {
    const element = create(tag, options);
    if (String(tag).toLowerCase() === "style") element.nonce = nonce;
    return element;
  };
}

if (styleNonce) nonceStyles(styleNonce);

function openSerial(url) {
  screen.replaceChildren();
  const term = new window.Terminal({ cursorBlink: true, convertEol: false, fontSize: 15 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  const encoder = new TextEncoder();
  const socket = openChannel(url, (channel) => {
    say("Connected. Type in the terminal.", "ok");
    term.focus();
    channel.onmessage = (event) => term.write(new Uint8Array(event.data));
    channel.onclose = (event) => ended(event.wasClean && event.code === 1000
      ? "The console session ended (the VM stopped, or the session was closed)."
      : "The connection to the console was lost or refused.");
  });
  term.onData((data) => { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data)); });
  return {
    sendText(text) { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(text.replace(/\n/g, "\r"))); },
    ctrlAltDel() {},
    close() { socket.close(); },
  };
}

async function connect() {
  reconnect.hidden = true;
  if (session) session.close();
  say("Connecting…");
  try {
    const url = websocketUrl(proxyUrl, await fetchToken());
    session = protocol === "serial" ? openSerial(url) : openVnc(url);
  } catch (error) {
    ended(error.message);
  }
}

reconnect.addEventListener("click", connect);
document.getElementById("console-cad")?.addEventListener("click", () => session && session.ctrlAltDel());
document.getElementById("console-fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else screen.requestFullscreen();
});
document.getElementById("console-paste").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("console-paste-text");
  if (session) session.sendText(field.value);
  field.value = "";
  event.target.closest("details").open = false;
});
connect();
