// ESLint flat config: typescript-eslint's type-aware recommended rules for all TS sources.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { plugin as agentry } from "./hack/lint/folders.ts";

const programRuleIgnores = ["**/*.test.ts", "test/**", "bench/**", "hack/**", "lib/http/nodehttp.ts"];
const nodeHttpRestriction = ["node:http", "http"].map((name) => ({
  name,
  allowTypeImports: true,
  message: "import createServer, request and Agent from lib/http/nodehttp.ts (no undici)",
}));

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", ".tmp/", "crds/", "manifests/", "charts/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            {
              from: "package",
              package: "node:test",
              name: ["describe", "it", "test", "suite", "before", "after"],
            },
          ],
        },
      ],
      "no-console": "off",
    },
  },
  {
    // Which folder may import which (docs/adr/0005-folders-lib-contracts.md).
    files: ["**/*.ts"],
    plugins: { agentry },
    rules: { "agentry/folder-imports": ["error", { root: import.meta.dirname }] },
  },
  {
    // Programs take node:http's values from lib/http/nodehttp.ts: an ES module import of
    // node:http loads undici (~15 MiB resident) in Node 24. Types may come from node:http.
    // The programs' flags are read by lib/cli/flags.ts with util.parseArgs; commander (~2 MiB
    // in every process that loads it) is the agentry CLI's only.
    files: ["**/*.ts"],
    ignores: [...programRuleIgnores, "cli/**"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        ...nodeHttpRestriction,
        { name: "commander", message: "programs read flags with lib/cli/flags.ts (no commander)" },
      ],
    },
  },
  {
    files: ["cli/**/*.ts"],
    ignores: programRuleIgnores,
    rules: { "@typescript-eslint/no-restricted-imports": ["error", ...nodeHttpRestriction] },
  },
  {
    // Tests poke into loosely typed Kubernetes objects; type safety there buys little.
    files: ["**/*.test.ts", "test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
    },
  },
  {
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
