// Stylesheets are bundled by esbuild (hack/console.ts).
declare module "*.css";
