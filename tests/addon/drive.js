// Drives a Stremio addon the way the Stremio apps did, through their client library, and
// prints what it saw as one JSON document for the Rust test to judge.
//
// usage: node drive.js <manifest URL> [search term...]
//
// Walks every catalogue of the manifest (first page, then `skip` pages while full), runs each
// search term against each catalogue that declares the `search` extra, asks `meta` for every
// item, and `stream` for every movie and every series episode (`videos[].id`).
'use strict'

const { detectFromURL } = require('stremio-addon-client')
const linter = require('stremio-addon-linter')

function fail(what, err) {
  process.stderr.write(`${what}: ${err && err.stack ? err.stack : JSON.stringify(err)}\n`)
  process.exit(1)
}

async function main() {
  const [manifestUrl, ...searches] = process.argv.slice(2)
  if (!manifestUrl) fail('usage', 'node drive.js <manifest URL> [search term...]')

  const detected = await detectFromURL(manifestUrl).catch((err) => fail('detectFromURL', err))
  const addon = detected.addon
  if (!addon) fail('detectFromURL', 'not an addon')
  const manifest = addon.manifest
  const report = {
    lint: linter.lintManifest(manifest),
    manifest,
    catalogs: {},
    searches: {},
    metas: {},
    streams: {},
    supported: {
      movieStream: addon.isSupported('stream', 'movie', 'tt0000001'),
      episodeStream: addon.isSupported('stream', 'series', 'tt0903747:1:2'),
      tgcdnMeta: addon.isSupported('meta', 'movie', 'tgcdn:abc'),
      foreignMeta: addon.isSupported('meta', 'movie', 'kitsu:1'),
    },
  }

  for (const catalog of manifest.catalogs) {
    const key = `${catalog.type}/${catalog.id}`
    const metas = []
    for (let skip = 0; ; skip += 100) {
      const extra = skip ? { skip } : {}
      const page = await addon.get('catalog', catalog.type, catalog.id, extra)
        .catch((err) => fail(`catalog ${key} skip ${skip}`, err))
      metas.push(...page.metas)
      if (page.metas.length < 100) break
    }
    report.catalogs[key] = metas
    const searchable = (catalog.extra || []).some((e) => e.name === 'search')
    for (const term of searches) {
      if (!searchable) continue
      const found = await addon.get('catalog', catalog.type, catalog.id, { search: term })
        .catch((err) => fail(`search ${key} ${term}`, err))
      report.searches[`${key}?${term}`] = found.metas.map((m) => m.name)
    }
    for (const preview of metas) {
      const { meta } = await addon.get('meta', preview.type, preview.id)
        .catch((err) => fail(`meta ${preview.id}`, err))
      report.metas[preview.id] = meta
      const ids = preview.type === 'series' ? (meta.videos || []).map((v) => v.id) : [preview.id]
      for (const id of ids) {
        const { streams } = await addon.get('stream', preview.type, id)
          .catch((err) => fail(`stream ${id}`, err))
        report.streams[id] = streams
      }
    }
  }
  process.stdout.write(JSON.stringify(report))
}

main().catch((err) => fail('drive', err))
