import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** The Tether server the dev server proxies to: `npm run server` here (port 3000) by default. */
const target = process.env.TETHER_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/api": { target, changeOrigin: false },
      "/socket.io": { target, ws: true },
    },
  },
  build: { target: "es2022", sourcemap: true },
});
