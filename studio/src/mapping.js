// Building a RecVector mapping from the roles and choices made on the page, and the suggestions
// the page makes from the catalog (primary keys, foreign keys, column types).

export const KINDS = ["text", "category", "tags", "number"];

const isTime = (type) => /^(timestamp|date)/.test(type);
export const isText = (type) => /^(text|character varying|character|varchar|citext)/.test(type);

export function table(catalog, id) {
  return catalog.tables.find((t) => t.id === id);
}

// Columns of `from` that reference `to` (by foreign key), with the referenced columns.
function fksBetween(catalog, from, to) {
  return catalog.foreign_keys.filter((f) => f.from === from && f.to === to && f.columns.length === 1);
}

// How an interaction table reaches the entity id: directly (a column referencing the entity table),
// or through up to three tables in between: many-to-one foreign keys, and first, from the
// interaction's own key, a detail table that references it
// (rental.inventory_id -> inventory.film_id -> film; invoice <- invoice_line.track_id -> track;
// payment.rental_id -> rental.inventory_id -> inventory.film_id -> film). Breadth-first, so the
// shortest path wins. A state is "the value in hand equals table.column".
export function suggestEntityPath(catalog, interactionId, entityId, maxSteps = 3) {
  const single = catalog.foreign_keys.filter((f) => f.columns.length === 1);
  const entity = table(catalog, entityId);
  const idColumn = entity?.primary_key[0];
  if (!idColumn) return null;
  const direct = single.find((f) => f.from === interactionId && f.to === entityId && f.to_columns[0] === idColumn);
  if (direct) return { entity_column: direct.columns[0], path: [] };
  const inter = table(catalog, interactionId);
  // Start: the value of an interaction column that references another table, or of its own key.
  let frontier = [
    ...single.filter((f) => f.from === interactionId).map((f) => ({ t: f.to, c: f.to_columns[0], start: f.columns[0], path: [] })),
    ...(inter?.primary_key.length === 1 ? [{ t: interactionId, c: inter.primary_key[0], start: inter.primary_key[0], path: [] }] : []),
  ];
  const seen = new Set(frontier.map((s) => `${s.t}.${s.c}`));
  for (let depth = 0; depth < maxSteps; depth += 1) {
    const next = [];
    for (const s of frontier) {
      const steps = [
        // look the value up in its own table, take a column that references the next table
        ...single.filter((f) => f.from === s.t && s.t !== interactionId)
          .map((f) => ({ table: s.t, match: s.c, select: f.columns[0], to: f.to, toColumn: f.to_columns[0] })),
        // rows of a detail table that reference the interaction's own key, take one of their
        // references (invoice <- invoice_line.track_id); only there: elsewhere a reverse step
        // fans out to unrelated rows (a customer's store's whole inventory)
        ...single.filter((back) => s.t === interactionId && back.to === s.t && back.to_columns[0] === s.c && back.from !== interactionId)
          .flatMap((back) => single.filter((f) => f.from === back.from && f !== back)
            .map((f) => ({ table: back.from, match: back.columns[0], select: f.columns[0], to: f.to, toColumn: f.to_columns[0] }))),
      ];
      for (const st of steps) {
        const path = [...s.path, { table: st.table, match: st.match, select: st.select }];
        if (st.to === entityId && st.toColumn === idColumn) return { entity_column: s.start, path };
        const key = `${st.to}.${st.toColumn}`;
        if (!seen.has(key)) {
          seen.add(key);
          next.push({ t: st.to, c: st.toColumn, start: s.start, path });
        }
      }
    }
    frontier = next;
  }
  return null;
}

export function suggestInteraction(catalog, interactionId, userId, entityId) {
  const t = table(catalog, interactionId);
  const userFk = userId ? fksBetween(catalog, interactionId, userId)[0] : null;
  const time = t.columns.find((c) => isTime(c.type));
  const route = entityId ? suggestEntityPath(catalog, interactionId, entityId) : null;
  return {
    user_column: userFk ? userFk.columns[0] : "",
    timestamp_column: time ? time.name : "",
    entity_column: route ? route.entity_column : "",
    path: route ? route.path : [],
    weight: 1,
  };
}

export function suggestFeatures(catalog, entityId) {
  const t = table(catalog, entityId);
  const out = {};
  for (const c of t.columns) {
    if (!t.primary_key.includes(c.name) && isText(c.type)) out[c.name] = { kind: c.type.endsWith("[]") ? "tags" : "text", weight: 1 };
  }
  return out;
}

export const qualified = (t) => (t && !t.includes(".") ? `public.${t}` : t);

// A joined feature's identity: the related table, its column and the way there.
export function joinedKey(from, column) {
  const via = from.link ? `link ${qualified(from.link.table)}.${from.link.entity_column}.${from.link.key_column}` : `column ${from.entity_column || ""}`;
  return `${qualified(from.table)}.${column} ${via} ${from.key}`;
}

const short = (id) => id.split(".").pop();
const featureName = (text) => {
  const n = text.replace(/[^A-Za-z0-9_ ]/g, "_").replace(/^[^A-Za-z]+/, "");
  return (n || "feature").slice(0, 63);
};

// Features from related tables that the foreign keys reach: many-to-one through a column of the
// entity table (film.language_id -> language.name), many-to-many through a link table whose key is
// its two foreign keys (film <- film_category -> category.name). Text columns only; the related
// table's key is the referenced column.
export function suggestJoined(catalog, entityId) {
  const e = table(catalog, entityId);
  if (!e) return [];
  const out = [];
  const add = (rid, from, via, kind, stem) => {
    const r = table(catalog, rid);
    if (!r) return;
    for (const c of r.columns) {
      if (r.primary_key.includes(c.name) || !isText(c.type)) continue;
      out.push({ key: joinedKey(from, c.name), table: rid, column: c.name, from, via, kind,
                 name: featureName(c.name === "name" ? stem : `${stem}_${c.name}`) });
    }
  };
  const single = catalog.foreign_keys.filter((f) => f.columns.length === 1);
  for (const fk of single) {
    if (fk.from === entityId && fk.to !== entityId) {
      const stem = fk.columns[0].replace(/_id$/, "") || short(fk.to);
      add(fk.to, { table: fk.to, key: fk.to_columns[0], entity_column: fk.columns[0] }, `${short(entityId)}.${fk.columns[0]}`, "category", stem);
    }
    // A link table: its primary key is made of its foreign keys (film_category, playlist_track),
    // unlike a table of facts with a key of its own (invoice_line, inventory).
    const link = table(catalog, fk.from);
    const isLink = link && link.primary_key.length >= 2
      && link.primary_key.every((c) => single.some((f) => f.from === fk.from && f.columns[0] === c));
    if (fk.to === entityId && isLink && e.primary_key.length === 1 && fk.to_columns[0] === e.primary_key[0]) {
      for (const other of single) {
        if (other.from !== fk.from || other === fk || other.to === entityId || other.to === fk.from) continue;
        add(other.to, { table: other.to, key: other.to_columns[0],
                        link: { table: fk.from, entity_column: fk.columns[0], key_column: other.columns[0] } },
            fk.from, "tags", short(other.to));
      }
    }
  }
  return out;
}

// The page's state from a mapping document (loaded from the database or the file). What the page
// does not edit — joined features, per-type or rating weights, scoring, decay, the embedding
// section — is kept as it is and written back unchanged.
export function stateFromDoc(doc) {
  const roles = {};
  const features = {};
  const interactions = {};
  const extraFeatures = [];
  const joined = {};
  if (doc.users) roles[qualified(doc.users.table)] = "user";
  if (doc.entities) {
    const entity = qualified(doc.entities.table);
    roles[entity] = "entity";
    (doc.entities.features || []).forEach((f, order) => {
      // The order is kept: it is the order of the parts of the entity text that gets embedded.
      if (f.from) {
        // Keyed by its first column: the suggestion for that column shows it, with the others.
        const first = Array.isArray(f.column) ? f.column[0] : f.column;
        joined[joinedKey(f.from, first)] = { entity, feature: f, kind: f.kind, weight: f.weight ?? 1, order };
      } else if (typeof f.column !== "string") extraFeatures.push({ order, feature: f });
      else features[f.column] = { kind: f.kind, weight: f.weight ?? 1, name: f.name, label: f.label, order };
    });
  }
  for (const src of doc.interactions || []) {
    const id = qualified(src.table);
    roles[id] = "interaction";
    const w = src.weight || { fixed: 1 };
    interactions[id] = {
      name: src.name, user_column: src.user_column, entity_column: src.entity_column,
      timestamp_column: src.timestamp_column, path: src.path || [],
      weightKind: w.by_type ? "by_type" : w.from_value ? "from_value" : "fixed",
      weight: w.fixed ?? 1,
      typeColumn: w.by_type?.column || "",
      typeValues: w.by_type ? Object.entries(w.by_type.values).map(([k, v]) => `${k}=${v}`).join(", ") : "",
      typeDefault: w.by_type?.default,
      valueColumn: w.from_value?.column || "",
      center: w.from_value?.center ?? 0,
      scale: w.from_value?.scale ?? 1,
    };
  }
  return { roles, features, joined, interactions, strategy: doc.aggregation?.strategy || "full", base: doc, extraFeatures,
           settings: settingsFromDoc(doc) };
}

export function settingsFromDoc(doc) {
  return {
    half_life: doc.aggregation?.half_life ?? "30 days",
    capture: doc.aggregation?.capture ?? "immediate",
    lambda: doc.scoring?.lambda ?? 0.7,
    alpha: doc.scoring?.alpha ?? 1,
    beta: doc.scoring?.beta ?? 0.05,
  };
}

// "like=1, view=0.3, dislike=-1" -> {like: 1, view: 0.3, dislike: -1}
export function parseValues(text) {
  const out = {};
  for (const part of String(text || "").split(",")) {
    const [k, v] = part.split("=").map((x) => x && x.trim());
    if (k) out[k] = v === undefined || v === "" || Number.isNaN(Number(v)) ? v : Number(v);
  }
  return out;
}

function weightOf(cfg) {
  if (cfg.weightKind === "by_type") {
    const byType = { column: cfg.typeColumn || "", values: parseValues(cfg.typeValues) };
    if (cfg.typeDefault !== undefined && cfg.typeDefault !== null) byType.default = cfg.typeDefault;
    return { by_type: byType };
  }
  if (cfg.weightKind === "from_value") {
    return { from_value: { column: cfg.valueColumn || "", center: Number(cfg.center ?? 0), scale: Number(cfg.scale ?? 1) } };
  }
  return { fixed: Number(cfg.weight ?? 1) };
}

export function buildMapping(catalog, state) {
  const { roles, features, joined = {}, interactions, strategy, base = {}, extraFeatures = [], settings = settingsFromDoc({}) } = state;
  const byRole = (r) => Object.keys(roles).filter((id) => roles[id] === r);
  const userId = byRole("user")[0];
  const entityId = byRole("entity")[0];
  const { users: _u, entities: _e, interactions: _i, ...rest } = base;
  const doc = { version: 1, ...rest };
  if (userId) {
    const u = table(catalog, userId);
    doc.users = { table: userId, id: u.primary_key[0] || "" };
  }
  if (entityId) {
    const e = table(catalog, entityId);
    doc.entities = {
      table: entityId,
      id: e.primary_key[0] || "",
      features: [
        ...Object.entries(features).map(([column, f], i) => ({
          order: f.order ?? 1e6 + i,
          feature: { name: f.name || column, ...(f.label ? { label: f.label } : {}), kind: f.kind, weight: Number(f.weight), column },
        })),
        ...Object.values(joined).filter((j) => j.entity === entityId).map((j, i) => ({
          order: j.order ?? 2e6 + i,
          feature: { ...j.feature, kind: j.kind, weight: Number(j.weight) },
        })),
        ...(qualified(base.entities?.table) === entityId ? extraFeatures : []),
      ].sort((a, b) => a.order - b.order).map((x) => x.feature),
    };
  }
  doc.interactions = byRole("interaction").map((id) => {
    const cfg = interactions[id] || {};
    const src = {
      name: cfg.name || table(catalog, id).name,
      table: id,
      user_column: cfg.user_column || "",
      entity_column: cfg.entity_column || "",
      timestamp_column: cfg.timestamp_column || "",
      weight: weightOf(cfg),
    };
    src.path = cfg.path || [];
    return src;
  });
  doc.aggregation = { ...(base.aggregation || {}), strategy, capture: settings.capture || "immediate", half_life: settings.half_life };
  doc.scoring = { ...(base.scoring || {}), lambda: Number(settings.lambda), alpha: Number(settings.alpha),
                  beta: Number(settings.beta) };
  doc.embedding = base.embedding || { provider: "local", model: "all-MiniLM-L6-v2", dimensions: 384 };
  return doc;
}

// Which table a problem's JSON path concerns, for showing it on that node.
export function problemTable(path, doc) {
  if (path.startsWith("$.users")) return doc.users?.table;
  if (path.startsWith("$.entities")) return doc.entities?.table;
  const m = path.match(/^\$\.interactions\[(\d+)\]/);
  if (m) return doc.interactions?.[Number(m[1])]?.table;
  return null;
}
