// graphql-codegen's client preset: typed documents for every graphql(`...`)
// call in src/, from the repository's schema file (no server needed). The
// output, src/gql/, is not committed: `npm run build` regenerates it, so a
// schema change that breaks the example fails the build (and make test).
// Against a running server, point schema at its SDL instead:
//   schema: { "http://127.0.0.1:8080/schema.graphql": { headers: { Authorization: "Bearer ..." } } }
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphqls",
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  // ESM under "module": "nodenext": relative imports need their .js.
  importExtension: ".js",
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        strictScalars: true,
        scalars: {
          // An RFC 3339 string on the wire.
          Time: "string",
          JSON: "unknown",
          // A JSON number on output: JSON.parse gives a number (exact up to
          // 2^53). On input the server also takes a decimal string, which
          // is how a bigint is sent exactly: String(n).
          Int64: { input: "number | string", output: "number" },
        },
      },
      presetConfig: {
        // The graphql() function only; no fragment masking in so small a client.
        fragmentMasking: false,
      },
    },
  },
};

export default config;
