// ssh's ProxyCommand while a VM boots: `node ssh-banner-proxy.mjs HOST PORT BUDGET_SECONDS`.
//
// qemu's user networking accepts the host side of a forward at once and then sends its SYN to
// the guest; before the guest's NIC is up that SYN is lost and slirp retransmits it 3, 9, 21 s
// later. One ssh attempt begun then waited up to ~7 s past sshd's start. Here a connection that
// stays silent is dropped after a short window and a new one is opened (a fresh SYN); one the
// guest refuses is retried at once. The first connection that sends a byte (sshd's banner) is
// kept and relayed both ways, so the login that follows is the same connection: no second fork
// of sshd-session in the guest. The window grows after each silent attempt, so a guest that
// accepted but is slow to answer is not abandoned forever.
import { connect } from 'node:net';
import { pipeline } from 'node:stream';

const [host, portText, budgetText] = process.argv.slice(2);
const port = Number(portText);
const budgetMs = Number(budgetText) * 1000;
if (!host || !Number.isInteger(port) || !(budgetMs > 0)) {
  process.stderr.write('usage: ssh-banner-proxy.mjs HOST PORT BUDGET_SECONDS\n');
  process.exit(2);
}

const FIRST_WINDOW_MS = 1500;
const MAX_WINDOW_MS = 10_000;
const REFUSED_RETRY_MS = 250;
const deadline = Date.now() + budgetMs;
let windowMs = FIRST_WINDOW_MS;

function attempt() {
  const left = deadline - Date.now();
  if (left <= 0) {
    process.stderr.write(`no SSH banner from ${host}:${port} within ${budgetText}s\n`);
    process.exit(1);
  }
  const socket = connect({ host, port });
  let settled = false;
  const giveUp = (silent) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    if (silent) windowMs = Math.min(MAX_WINDOW_MS, Math.round(windowMs * 1.5));
    setTimeout(attempt, silent ? 0 : REFUSED_RETRY_MS);
  };
  const timer = setTimeout(() => giveUp(true), Math.min(windowMs, left));
  socket.on('error', () => giveUp(false));
  socket.on('close', () => giveUp(false));
  socket.once('data', (first) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeAllListeners('close');
    socket.removeAllListeners('error');
    socket.pause();
    process.stdout.write(first);
    // ssh wrote its own banner at once; it waited in the pipe until this connection was chosen.
    process.stdin.pipe(socket);
    pipeline(socket, process.stdout, (err) => process.exit(err ? 1 : 0));
  });
}

attempt();
