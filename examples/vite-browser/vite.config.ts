import { defineConfig } from "vite";

/** The Tether server the dev server proxies to: `npm start` at the repository root by default. */
const target = process.env.TETHER_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  server: {
    proxy: {
      "/api": { target, changeOrigin: false },
      "/socket.io": { target, ws: true },
    },
  },
  build: { target: "es2022", sourcemap: true },
});
