#!/usr/bin/env bash
# build.sh writes graphiql/dist/: the browser bundles that graphiql.go embeds
# and the license texts of everything in them. dist/ is committed, so the
# module builds and serves GraphiQL without npm (`go install` works); this
# script is the one way to regenerate it, from the pins in package-lock.json.
#
#   build.sh          rebuild dist/ (`make graphiql`; commit the result)
#   build.sh --check  build into a temporary directory and fail when the
#                     committed dist/ differs from it (`make test` runs this)
#
# Why prebuilt UMD files rather than our own bundle: graphiql 3.9.0 ships a
# minified UMD build (global `GraphiQL`, expects globals `React`/`ReactDOM`),
# React 18 ships UMD builds (React 19 dropped them, and graphiql 3 needs
# React <= 18), and graphql-ws ships a UMD client (global `graphqlWs`). So no
# bundler, no build step of our own: npm only downloads pinned files.
#
# Deterministic: npm ci installs exactly the lockfile (integrity-checked), each
# file is copied through one sed, and the license list is sorted in the C
# locale, so the same lockfile and script give the same bytes on any machine.
# npm ci reuses npm's own cache (--prefer-offline).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")"

check=0
case "${1:-}" in
"") ;;
--check) check=1 ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

# Source file in node_modules -> name in dist/. graphiql.go embeds the same
# names (its go:embed lines, scripts and styles); keep the two in sync.
files=(
	"react/umd/react.production.min.js:react.production.min.js"
	"react-dom/umd/react-dom.production.min.js:react-dom.production.min.js"
	"graphql-ws/umd/graphql-ws.min.js:graphql-ws.min.js"
	"graphiql/graphiql.min.js:graphiql.min.js"
	"graphiql/graphiql.min.css:graphiql.min.css"
)

# --omit=dev: playwright-core (e2e/check.mjs) is not needed to build.
# --ignore-scripts: we only copy files, no package needs to run code here.
npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for f in "${files[@]}"; do
	# Drop sourceMappingURL comments: the maps are not shipped, and a browser
	# with devtools open would otherwise request them and log 404s.
	sed '/^\/\/# sourceMappingURL=/d; /^\/\*# sourceMappingURL=.*\*\/$/d' \
		"node_modules/${f%%:*}" >"$out/${f#*:}"
done

# The bundles contain code from every production dependency (graphiql's UMD
# file inlines codemirror, graphql, markdown-it, ...), so ship all their
# license texts with the bundle, in the module and in the binary.
{
	echo "Third-party software bundled in the GraphiQL assets (from graphiql/package-lock.json)."
	npm ls --omit=dev --all --parseable | tail -n +2 | sort -u | while read -r dir; do
		pkg="$(node -p 'const p=require(process.argv[1]+"/package.json"); p.name+"@"+p.version' "$dir")"
		lic="$(find "$dir" -maxdepth 1 -type f -iname 'licen[cs]e*' | sort | head -n 1)"
		printf '\n==== %s ====\n' "$pkg"
		if [[ -n "$lic" ]]; then cat "$lic"; else node -p 'require(process.argv[1]+"/package.json").license' "$dir"; fi
	done
} >"$out/THIRD_PARTY_LICENSES.txt"

if [[ $check == 1 ]]; then
	if ! differ="$(diff -rq dist "$out")"; then
		echo "graphiql/dist is not what build.sh makes of package-lock.json:" >&2
		echo "${differ//$out/(build.sh)}" >&2
		echo "run 'make graphiql' and commit graphiql/dist" >&2
		exit 1
	fi
	echo "graphiql: dist/ matches package-lock.json"
	exit 0
fi

rm -rf dist
mkdir dist
cp "$out"/* dist/
echo "graphiql: dist/ rebuilt; commit it:"
ls -l dist
