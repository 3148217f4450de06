// A minimal Parquet writer for the tests: required columns of doubles and UTF-8 strings, PLAIN
// encoded, uncompressed, in row groups of a chosen size. Enough to hand the page a
// million-pair file without a Parquet library in the test's dependencies; the CLI (arrow-rs)
// reads the same file for the expected numbers, so a malformed file fails both.
import { writeFileSync } from "node:fs";

const TYPE = { DOUBLE: 5, BYTE_ARRAY: 6 };

/// Thrift's compact protocol, as Parquet's metadata uses it.
class Compact {
  bytes = [];
  last = [0];
  varint(n) {
    let v = BigInt(n);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      this.bytes.push(b);
    } while (v);
  }
  zigzag(n) { const v = BigInt(n); this.varint(v >= 0n ? v << 1n : ((-v) << 1n) - 1n); }
  field(id, type) {
    const delta = id - this.last[this.last.length - 1];
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else { this.bytes.push(type); this.zigzag(id); }
    this.last[this.last.length - 1] = id;
  }
  i32(id, v) { this.field(id, 5); this.zigzag(v); }
  i64(id, v) { this.field(id, 6); this.zigzag(v); }
  string(id, s) { const b = Buffer.from(s, "utf8"); this.field(id, 8); this.varint(b.length); this.bytes.push(...b); }
  struct(id, body) { this.field(id, 12); this.begin(); body(this); this.end(); }
  list(id, type, items, each) {
    this.field(id, 9);
    if (items.length < 15) this.bytes.push((items.length << 4) | type);
    else { this.bytes.push(0xf0 | type); this.varint(items.length); }
    for (const item of items) each(this, item);
  }
  begin() { this.last.push(0); }
  end() { this.bytes.push(0); this.last.pop(); }
  /// A struct as a list element (no field header).
  element(body) { this.begin(); body(this); this.end(); }
  buffer() { return Buffer.from(this.bytes); }
}

function plain(type, values) {
  if (type === TYPE.DOUBLE) {
    const out = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => out.writeDoubleLE(v, i * 8));
    return out;
  }
  const parts = values.map((s) => Buffer.from(s, "utf8"));
  const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) { out.writeUInt32LE(p.length, at); p.copy(out, at + 4); at += 4 + p.length; }
  return out;
}

/// Writes `columns` ({ name: { type: "double" | "string", values } }, all of `rows` values) to
/// `path`, `groupRows` rows per row group.
export function writeParquet(path, rows, columns, groupRows) {
  const names = Object.keys(columns);
  const typeOf = (n) => (columns[n].type === "double" ? TYPE.DOUBLE : TYPE.BYTE_ARRAY);
  const chunks = [Buffer.from("PAR1")];
  let offset = 4;
  const groups = [];
  for (let start = 0; start < rows; start += groupRows) {
    const end = Math.min(rows, start + groupRows);
    const cols = [];
    for (const name of names) {
      const data = plain(typeOf(name), columns[name].values.slice(start, end));
      const header = new Compact();
      header.begin();
      header.i32(1, 0); // DATA_PAGE
      header.i32(2, data.length);
      header.i32(3, data.length);
      header.struct(5, (h) => { h.i32(1, end - start); h.i32(2, 0); h.i32(3, 3); h.i32(4, 3); });
      header.end();
      const head = header.buffer();
      cols.push({ name, offset, size: head.length + data.length, values: end - start });
      chunks.push(head, data);
      offset += head.length + data.length;
    }
    groups.push({ cols, rows: end - start });
  }
  const meta = new Compact();
  meta.begin();
  meta.i32(1, 1);
  meta.list(2, 12, [null, ...names], (m, name) => m.element((e) => {
    if (name === null) { e.string(4, "schema"); e.i32(5, names.length); return; }
    e.i32(1, typeOf(name));
    e.i32(3, 0); // REQUIRED
    e.string(4, name);
    if (typeOf(name) === TYPE.BYTE_ARRAY) e.i32(6, 0); // UTF8
  }));
  meta.i64(3, rows);
  meta.list(4, 12, groups, (m, g) => m.element((e) => {
    e.list(1, 12, g.cols, (l, c) => l.element((cc) => {
      cc.i64(2, c.offset);
      cc.struct(3, (md) => {
        md.i32(1, typeOf(c.name));
        md.list(2, 5, [0], (x, v) => x.zigzag(v));
        md.list(3, 8, [c.name], (x, s) => { const b = Buffer.from(s); x.varint(b.length); x.bytes.push(...b); });
        md.i32(4, 0);
        md.i64(5, c.values);
        md.i64(6, c.size);
        md.i64(7, c.size);
        md.i64(9, c.offset);
      });
    }));
    e.i64(2, g.cols.reduce((n, c) => n + c.size, 0));
    e.i64(3, g.rows);
  }));
  meta.end();
  const footer = meta.buffer();
  const len = Buffer.alloc(4);
  len.writeUInt32LE(footer.length);
  chunks.push(footer, len, Buffer.from("PAR1"));
  writeFileSync(path, Buffer.concat(chunks));
}
