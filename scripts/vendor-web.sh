#!/usr/bin/env bash
# Refresh the web page's vendored libraries from npm (pinned versions), with their licences.
# Run by hand when bumping a version; the results are committed, so nothing needs Node or a CDN
# at run time. Usage: scripts/vendor-web.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MARKED=15.0.12
DOMPURIFY=3.2.6
HIGHLIGHT=11.11.1

dest=src/echo_stream/web/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

unpack() {  # package version -> unpacked into $work/<package>
  local name=$1 version=$2
  local tarball
  tarball=$(cd "$work" && npm pack --silent "$name@$version" | tail -n 1)
  mkdir -p "$work/$name"
  tar -xzf "$work/$tarball" -C "$work/$name" --strip-components=1
}

unpack marked "$MARKED"
cp "$work/marked/marked.min.js" "$dest/marked.min.js"
cp "$work/marked/LICENSE.md" "$dest/marked.LICENSE.md"

unpack dompurify "$DOMPURIFY"
cp "$work/dompurify/dist/purify.min.js" "$dest/purify.min.js"
cp "$work/dompurify/LICENSE" "$dest/dompurify.LICENSE"

unpack @highlightjs/cdn-assets "$HIGHLIGHT"
hl="$work/@highlightjs/cdn-assets"
cp "$hl/highlight.min.js" "$dest/highlight.min.js"
cp "$hl/LICENSE" "$dest/highlight.LICENSE"
cp "$hl/styles/github.min.css" "$dest/hljs-light.min.css"
cp "$hl/styles/github-dark.min.css" "$dest/hljs-dark.min.css"

cat > "$dest/VERSIONS" <<VERSIONS
marked $MARKED (MIT) marked.min.js
dompurify $DOMPURIFY (MPL-2.0 OR Apache-2.0) purify.min.js
@highlightjs/cdn-assets $HIGHLIGHT (BSD-3-Clause) highlight.min.js, github(-dark) styles
VERSIONS
echo "vendored into $dest:"; ls -l "$dest"
