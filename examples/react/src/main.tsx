import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";

const root = document.getElementById("root");
if (!root) throw new Error("no #root element");
// StrictMode mounts every component twice in development: the bindings connect and join once anyway.
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
