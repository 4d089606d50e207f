#!/usr/bin/env bash
# build.sh fills graphiql/dist/ with the browser bundles that graphiql.go
# embeds (go:embed dist). It is what `make graphiql` runs.
#
# Why prebuilt UMD files rather than our own bundle: graphiql 3.9.0 ships a
# minified UMD build (global `GraphiQL`, expects globals `React`/`ReactDOM`),
# React 18 ships UMD builds (React 19 dropped them, and graphiql 3 needs
# React <= 18), and graphql-ws ships a UMD client (global `graphqlWs`). So no
# bundler, no build step of our own: npm only downloads pinned files.
#
# Cache friendliness: npm ci reuses npm's own cache (--prefer-offline), and the
# whole step is skipped when dist/.stamp matches the hash of the lockfile and
# this script (dist/.stamp is a dotfile, so go:embed leaves it out).
set -euo pipefail

cd "$(dirname "$0")"

# Source file in node_modules -> name in dist/. graphiql.go lists the same
# names (assetFiles); keep the two in sync.
files=(
	"react/umd/react.production.min.js:react.production.min.js"
	"react-dom/umd/react-dom.production.min.js:react-dom.production.min.js"
	"graphql-ws/umd/graphql-ws.min.js:graphql-ws.min.js"
	"graphiql/graphiql.min.js:graphiql.min.js"
	"graphiql/graphiql.min.css:graphiql.min.css"
)

stamp="$(cat package-lock.json build.sh | sha256sum | cut -d' ' -f1)"
uptodate=1
[[ -f dist/.stamp && "$(cat dist/.stamp)" == "$stamp" ]] || uptodate=0
for f in "${files[@]}" "x:THIRD_PARTY_LICENSES.txt"; do
	[[ -s "dist/${f#*:}" ]] || uptodate=0
done
if [[ $uptodate == 1 && "${FORCE:-}" != 1 ]]; then
	echo "graphiql: dist/ is up to date (set FORCE=1 to rebuild)"
	exit 0
fi

# --omit=dev: playwright-core (e2e/check.mjs) is not needed to build.
# --ignore-scripts: we only copy files, no package needs to run code here.
npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund

# Start from an empty dist/ but keep the committed placeholder.
find dist -mindepth 1 ! -name PLACEHOLDER.txt -exec rm -rf {} +

for f in "${files[@]}"; do
	src="node_modules/${f%%:*}" dst="dist/${f#*:}"
	# Drop sourceMappingURL comments: the maps are not shipped, and a browser
	# with devtools open would otherwise request them and log 404s.
	sed '/^\/\/# sourceMappingURL=/d; /^\/\*# sourceMappingURL=.*\*\/$/d' "$src" >"$dst"
done

# The bundles contain code from every production dependency (graphiql's UMD
# file inlines codemirror, graphql, markdown-it, ...), so ship all their
# license texts with the binary.
{
	echo "Third-party software bundled in the GraphiQL assets (from graphiql/package-lock.json)."
	npm ls --omit=dev --all --parseable | tail -n +2 | sort -u | while read -r dir; do
		pkg="$(node -p 'const p=require(process.argv[1]+"/package.json"); p.name+"@"+p.version' "$dir")"
		lic="$(find "$dir" -maxdepth 1 -type f -iname 'licen[cs]e*' | sort | head -n 1)"
		printf '\n==== %s ====\n' "$pkg"
		if [[ -n "$lic" ]]; then cat "$lic"; else node -p 'require(process.argv[1]+"/package.json").license' "$dir"; fi
	done
} >dist/THIRD_PARTY_LICENSES.txt

echo "$stamp" >dist/.stamp
echo "graphiql: dist/ built:"
ls -l dist
