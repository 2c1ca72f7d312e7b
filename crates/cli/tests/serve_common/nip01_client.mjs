// A NIP-01 client for the tests: Node's built-in WebSocket (undici) on the URL given as the
// first argument. Prints ["OPEN"] once connected, then every message the relay sends, one per
// line; sends every line read from stdin; closes when stdin ends.
import { createInterface } from "node:readline";

if (typeof WebSocket === "undefined") {
  console.error("this Node has no built-in WebSocket (Node 20.10+ with --experimental-websocket, or 22+)");
  process.exit(2);
}
const socket = new WebSocket(process.argv[2]);
socket.onopen = () => {
  console.log('["OPEN"]');
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => socket.send(line));
  lines.on("close", () => socket.close());
};
socket.onmessage = (message) => console.log(message.data);
socket.onclose = () => process.exit(0);
socket.onerror = (error) => {
  console.error(`websocket error: ${error.message ?? error}`);
  process.exit(1);
};
