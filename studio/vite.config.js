import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The built page ships inside the Python package, so users never need npm.
export default defineConfig({
  plugins: [react()],
  base: "./",
  build: { outDir: "../python/recvector/studio/static", emptyOutDir: true },
});
