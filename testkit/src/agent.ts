import { connect } from "node:net";

/** One line from an instance's agent-check port (TETHER_AGENT_PORT), as HAProxy reads it: `up 100%`, `drain`. */
export function agentSays(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString();
    });
    socket.on("end", () => resolve(text.trim()));
    socket.on("error", reject);
  });
}
