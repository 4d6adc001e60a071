/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The server's CSP allows scripts, styles, fonts and images only from its own origin (plus
// data:/blob: images): nothing may be inlined into index.html or turned into a data: URL.
export default defineConfig({
  plugins: [react()],
  build: {
    target: 'es2022',
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 700,
  },
  server: {
    // `npm run dev` against a running `omnihub demo`.
    proxy: {
      '/api': { target: 'https://localhost:8443', secure: false, ws: true },
      '/hooks': { target: 'https://localhost:8443', secure: false },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
