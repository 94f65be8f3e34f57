import React, { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ReactFlow, Background, Controls, Handle, Position, useNodesState } from "@xyflow/react";
import { KINDS, buildMapping, isText, problemTable, qualified, settingsFromDoc, stateFromDoc, suggestFeatures, suggestInteraction, suggestJoined, table } from "./mapping.js";

const ROLES = [["", "no role"], ["user", "User"], ["entity", "Entity"], ["feature", "Feature"], ["interaction", "Interaction"]];
const DRAG_TYPE = "application/x-recvector-role";

// Roles to drag onto a table node (the menu on each node does the same from the keyboard).
function RolePalette() {
  return (
    <span className="palette" aria-label="Roles: drag one onto a table">
      {ROLES.filter(([v]) => v).map(([v, l]) => (
        <span key={v} className={`chip role-${v}`} draggable data-testid={`drag-${v}`} title={`Drag onto a table to make it the ${l} table`}
              onDragStart={(e) => { e.dataTransfer.setData(DRAG_TYPE, v); e.dataTransfer.effectAllowed = "copy"; }}>{l}</span>
      ))}
    </span>
  );
}

async function api(path, body) {
  const res = await fetch(`api/${path}`, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await res.json();
  return { ok: res.ok, status: res.status, data };
}

function TableNode({ data }) {
  const { t, role, setRole, problems } = data;
  return (
    <div className={`table-node role-${role || "none"} ${problems.length ? "has-problems" : ""}`} data-testid={`node-${t.id}`}
         onDragOver={(e) => { if (e.dataTransfer.types.includes(DRAG_TYPE)) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; } }}
         onDrop={(e) => { const r = e.dataTransfer.getData(DRAG_TYPE); if (r) { e.preventDefault(); setRole(t.id, r); } }}>
      <Handle type="target" position={Position.Left} />
      <div className="table-title">{t.id}</div>
      <label className="role-menu">
        Role{" "}
        <select aria-label={`Role of ${t.id}`} value={role || ""} onChange={(e) => setRole(t.id, e.target.value)}>
          {ROLES.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
        </select>
      </label>
      <ul className="columns">
        {t.columns.slice(0, 8).map((c) => (
          <li key={c.name}>
            {t.primary_key.includes(c.name) && <span className="pk">PK</span>}{c.name}
            <span className="type"> {c.type}{c.nullable ? "" : " not null"}</span>
          </li>
        ))}
        {t.columns.length > 8 && <li className="type">… {t.columns.length - 8} more</li>}
      </ul>
      {problems.map((p) => <div key={p.path} className="node-problem" role="alert">{p.path}: {p.problem}</div>)}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}
const nodeTypes = { table: TableNode };

export default function App() {
  const [catalog, setCatalog] = useState(null);
  const [roles, setRoles] = useState({});
  const [features, setFeatures] = useState({});
  const [joined, setJoined] = useState({});
  const [interactions, setInteractions] = useState({});
  const [strategy, setStrategy] = useState("full");
  const [problems, setProblems] = useState(null);
  const [status, setStatus] = useState("");
  const [diffText, setDiffText] = useState("");
  const [preview, setPreview] = useState(null);
  const [userId, setUserId] = useState("");
  const [entityId, setEntityId] = useState("");
  const [loaded, setLoaded] = useState({ base: {}, extraFeatures: [] });
  const [settings, setSettings] = useState(settingsFromDoc({}));
  const [nodes, setNodes, onNodesChange] = useNodesState([]);

  const load = async (which) => {
    const r = await api("mapping");
    const doc = which === "file" ? r.data.file_mapping : r.data.loaded;
    if (!doc) { setStatus(which === "file" ? "No mapping file to load" : "No mapping loaded in the database"); return; }
    const st = stateFromDoc(doc);
    setLoaded({ base: st.base, extraFeatures: st.extraFeatures });
    setFeatures(st.features);
    setJoined(st.joined);
    setInteractions(st.interactions);
    setStrategy(st.strategy);
    setSettings(st.settings);
    setRoles(st.roles);
    setStatus(`Loaded the mapping from ${which === "file" ? r.data.file : "the database"}`);
  };

  useEffect(() => { api("catalog").then((r) => setCatalog(r.data)); }, []);

  const mapping = useMemo(() => (catalog ? buildMapping(catalog, { roles, features, joined, interactions, strategy, settings, ...loaded }) : null),
    [catalog, roles, features, joined, interactions, strategy, settings, loaded]);

  // Roles. User, Entity and Interaction are kept in `roles`; Feature is what the entity's features
  // from a related table are: giving a table that role adds its suggested joined feature (its
  // `name` column, else its first text column), taking it away removes them.
  const entityNow = Object.keys(roles).find((k) => roles[k] === "entity");
  const featureTables = useMemo(() => new Set(Object.values(joined).filter((j) => j.entity === entityNow)
    .map((j) => qualified(j.feature.from.table))), [joined, entityNow]);
  const assign = useRef(null);
  assign.current = (id, role) => {
    if (featureTables.has(id) && role !== "feature") {
      setJoined((all) => Object.fromEntries(Object.entries(all).filter(([, j]) => !(j.entity === entityNow && qualified(j.feature.from.table) === id))));
    }
    if (role === "feature") {
      const options = entityNow ? suggestJoined(catalog, entityNow).filter((o) => o.table === id) : [];
      const pick = options.find((o) => o.column === "name") || options[0];
      if (!pick) {
        setStatus(entityNow ? `${id} is not reachable from ${entityNow} by foreign keys: write its feature in the JSON`
          : "Choose the Entity table first: features belong to it");
        return;
      }
      setJoined((all) => (all[pick.key] ? all : { ...all, [pick.key]: newJoined(pick, entityNow, features, all) }));
    }
    setRoles((old) => {
      const next = { ...old };
      for (const k of Object.keys(next)) if (role && role !== "interaction" && role !== "feature" && next[k] === role) delete next[k];
      if (role && role !== "feature") next[id] = role; else delete next[id];
      return next;
    });
  };
  const setRole = useCallback((id, role) => assign.current(id, role), []);

  // Suggestions when roles change: features of a new entity table, columns of new interaction tables.
  useEffect(() => {
    if (!catalog) return;
    const user = Object.keys(roles).find((k) => roles[k] === "user");
    const entity = Object.keys(roles).find((k) => roles[k] === "entity");
    setFeatures((old) => (entity && Object.keys(old).every((c) => table(catalog, entity).columns.some((x) => x.name === c)) && Object.keys(old).length
      ? old : entity ? suggestFeatures(catalog, entity) : {}));
    setInteractions((old) => {
      const next = {};
      for (const id of Object.keys(roles).filter((k) => roles[k] === "interaction")) {
        const s = suggestInteraction(catalog, id, user, entity);
        const cur = old[id] || {};
        next[id] = { ...s, ...Object.fromEntries(Object.entries(cur).filter(([, v]) => v !== "" && !(Array.isArray(v) && !v.length))) };
      }
      return next;
    });
  }, [catalog, roles]);

  // Live validation with set_schema's own validator.
  const seq = useRef(0);
  useEffect(() => {
    if (!mapping) return;
    const n = ++seq.current;
    const timer = setTimeout(async () => {
      const r = await api("validate", { mapping });
      if (n === seq.current) setProblems(r.ok ? r.data.problems : [{ path: "$", problem: r.data.error }]);
    }, 300);
    return () => clearTimeout(timer);
  }, [mapping]);

  // Diagram: one node per table, foreign keys as edges.
  useEffect(() => {
    if (!catalog) return;
    setNodes((old) => catalog.tables.map((t, i) => {
      const prev = old.find((n) => n.id === t.id);
      const mine = (problems || []).filter((p) => mapping && problemTable(p.path, mapping) === t.id);
      const data = { t, role: roles[t.id] || (featureTables.has(t.id) ? "feature" : undefined), setRole, problems: mine };
      // Keep what React Flow measured (size, position): a node rebuilt without it is hidden until re-measured.
      return prev ? { ...prev, data }
        : { id: t.id, type: "table", position: { x: (i % 5) * 260, y: Math.floor(i / 5) * 260 }, data };
    }));
  }, [catalog, roles, featureTables, problems, mapping, setRole, setNodes]);
  const edges = useMemo(() => (catalog ? catalog.foreign_keys.map((f, i) => ({
    id: `fk${i}`, source: f.from, target: f.to, label: f.columns.join(", "),
  })) : []), [catalog]);

  if (!catalog) return <div className="loading">Reading the catalog…</div>;
  const entity = Object.keys(roles).find((k) => roles[k] === "entity");
  const globalProblems = (problems || []).filter((p) => !problemTable(p.path, mapping));
  const valid = problems && problems.length === 0;

  function setInteraction(id, patch) {
    setInteractions((all) => ({ ...all, [id]: { ...all[id], ...patch } }));
  }

  const run = async (label, fn) => {
    setStatus(`${label}…`);
    const r = await fn();
    setStatus(r.ok ? `${label}: done` : `${label} failed: ${r.data.error}`);
    return r;
  };

  return (
    <div className="studio">
      <header>
        <h1>RecVector studio</h1>
        <RolePalette />
        <span className={`validity ${valid ? "ok" : "bad"}`} data-testid="validity">
          {problems === null ? "checking…" : valid ? "Mapping is valid" : `${problems.length} problem(s)`}
        </span>
        <button onClick={() => load("database")}>Load from database</button>
        <button onClick={() => load("file")}>Load file</button>
        <button onClick={async () => { const r = await api("diff", { mapping }); setDiffText(r.data.diff || "(no change)"); }}>Show diff</button>
        <button disabled={!valid} onClick={() => run("Apply", () => api("apply", { mapping }))}>Apply</button>
        <button disabled={!valid} onClick={() => run("Bootstrap", () => api("bootstrap", {}))}>Bootstrap</button>
        <button onClick={() => run("Save", () => api("save", { mapping }))}>Save file</button>
        <a className="button" download="rec_schema.json"
           href={`data:application/json,${encodeURIComponent(JSON.stringify(mapping, null, 2))}`}>Download JSON</a>
        <span className="status" role="status" data-testid="status">{status}</span>
      </header>
      <main>
        <section className="canvas" aria-label="Tables">
          <ReactFlow nodes={nodes} edges={edges} nodeTypes={nodeTypes} onNodesChange={onNodesChange} fitView minZoom={0.1}>
            <Background />
            <Controls />
          </ReactFlow>
        </section>
        <aside>
          {globalProblems.map((p) => <div key={p.path} className="node-problem" role="alert">{p.path}: {p.problem}</div>)}
          {entity && (
            <fieldset>
              <legend>Features of {entity}</legend>
              {table(catalog, entity).columns.filter((c) => !table(catalog, entity).primary_key.includes(c.name)).map((c) => (
                <div key={c.name} className="feature">
                  <label>
                    <input type="checkbox" aria-label={`Feature ${c.name}`} checked={!!features[c.name]}
                           onChange={(e) => setFeatures((f) => {
                             const n = { ...f };
                             if (e.target.checked) n[c.name] = { kind: "text", weight: 1 }; else delete n[c.name];
                             return n;
                           })} /> {c.name}
                  </label>
                  {features[c.name] && (
                    <>
                      <select aria-label={`Kind of ${c.name}`} value={features[c.name].kind}
                              onChange={(e) => setFeatures((f) => ({ ...f, [c.name]: { ...f[c.name], kind: e.target.value } }))}>
                        {KINDS.map((k) => <option key={k}>{k}</option>)}
                      </select>
                      <input type="number" step="0.1" aria-label={`Weight of ${c.name}`} value={features[c.name].weight}
                             onChange={(e) => setFeatures((f) => ({ ...f, [c.name]: { ...f[c.name], weight: e.target.value } }))} />
                    </>
                  )}
                </div>
              ))}
              <JoinedFeatures catalog={catalog} entity={entity} features={features} joined={joined} setJoined={setJoined} />
            </fieldset>
          )}
          {Object.entries(interactions).map(([id, cfg]) => (
            <fieldset key={id}>
              <legend>Interactions in {id}</legend>
              {["user_column", "entity_column", "timestamp_column"].map((k) => (
                <label key={k} className="row">{k.replace("_", " ")}
                  <select aria-label={`${k} of ${id}`} value={cfg[k]} onChange={(e) => setInteraction(id, { [k]: e.target.value })}>
                    <option value="">—</option>
                    {table(catalog, id).columns.map((c) => <option key={c.name}>{c.name}</option>)}
                  </select>
                </label>
              ))}
              <div className="path" data-testid={`path-${id}`}>
                join path: {cfg.path && cfg.path.length
                  ? cfg.path.map((s) => `${s.table} (${s.match} → ${s.select})`).join(" → ")
                  : "none (the entity column holds the entity id)"}
              </div>
              <label className="row">weight
                <select aria-label={`Weight kind of ${id}`} value={cfg.weightKind || "fixed"}
                        onChange={(e) => setInteraction(id, { weightKind: e.target.value })}>
                  <option value="fixed">fixed</option>
                  <option value="by_type">per type value</option>
                  <option value="from_value">from a rating column</option>
                </select>
              </label>
              {(cfg.weightKind || "fixed") === "fixed" && (
                <label className="row">value
                  <input type="number" step="0.1" aria-label={`Weight of ${id}`} value={cfg.weight}
                         onChange={(e) => setInteraction(id, { weight: e.target.value })} />
                </label>
              )}
              {cfg.weightKind === "by_type" && (
                <>
                  <label className="row">type column
                    <select aria-label={`Type column of ${id}`} value={cfg.typeColumn || ""}
                            onChange={(e) => setInteraction(id, { typeColumn: e.target.value })}>
                      <option value="">—</option>
                      {table(catalog, id).columns.map((c) => <option key={c.name}>{c.name}</option>)}
                    </select>
                  </label>
                  <label className="row">weights
                    <input aria-label={`Type weights of ${id}`} placeholder="like=1, view=0.3, dislike=-1"
                           value={cfg.typeValues || ""} onChange={(e) => setInteraction(id, { typeValues: e.target.value })} />
                  </label>
                </>
              )}
              {cfg.weightKind === "from_value" && (
                <>
                  <label className="row">rating column
                    <select aria-label={`Rating column of ${id}`} value={cfg.valueColumn || ""}
                            onChange={(e) => setInteraction(id, { valueColumn: e.target.value })}>
                      <option value="">—</option>
                      {table(catalog, id).columns.map((c) => <option key={c.name}>{c.name}</option>)}
                    </select>
                  </label>
                  <label className="row">center / scale
                    <span>
                      <input type="number" step="0.5" aria-label={`Center of ${id}`} value={cfg.center ?? 0}
                             onChange={(e) => setInteraction(id, { center: e.target.value })} />
                      <input type="number" step="0.5" aria-label={`Scale of ${id}`} value={cfg.scale ?? 1}
                             onChange={(e) => setInteraction(id, { scale: e.target.value })} />
                    </span>
                  </label>
                </>
              )}
            </fieldset>
          ))}
          <fieldset>
            <legend>Profiles</legend>
            <label className="row">strategy
              <select aria-label="Strategy" value={strategy} onChange={(e) => setStrategy(e.target.value)}>
                <option>full</option><option>incremental</option>
              </select>
            </label>
            <label className="row">capture
              <select aria-label="Capture" value={settings.capture}
                      onChange={(e) => setSettings((x) => ({ ...x, capture: e.target.value }))}>
                <option value="immediate">immediate (in the app's INSERT)</option>
                <option value="deferred">deferred (folded by the worker)</option>
              </select>
            </label>
            <label className="row">half-life
              <input aria-label="Half-life" value={settings.half_life}
                     onChange={(e) => setSettings((x) => ({ ...x, half_life: e.target.value }))} />
            </label>
          </fieldset>
          <fieldset>
            <legend>Scoring defaults</legend>
            {[["lambda", "lambda (1 = relevance only)"], ["alpha", "alpha (similarity)"], ["beta", "beta (popularity)"]].map(([k, l]) => (
              <label key={k} className="row">{l}
                <input type="number" step="0.05" aria-label={`Scoring ${k}`} value={settings[k]}
                       onChange={(e) => setSettings((x) => ({ ...x, [k]: e.target.value }))} />
              </label>
            ))}
          </fieldset>
          <fieldset>
            <legend>Preview</legend>
            <label className="row">user <input aria-label="Preview user id" value={userId} onChange={(e) => setUserId(e.target.value)} /></label>
            <button onClick={async () => { const r = await api(`preview/user?id=${encodeURIComponent(userId)}`); setPreview(r.ok ? r.data : { error: r.data.error }); }}>Recommend</button>
            <label className="row">entity <input aria-label="Preview entity id" value={entityId} onChange={(e) => setEntityId(e.target.value)} /></label>
            <button onClick={async () => { const r = await api(`preview/entity?id=${encodeURIComponent(entityId)}`); setPreview(r.ok ? r.data : { error: r.data.error }); }}>Similar</button>
            {preview && <Preview p={preview} />}
          </fieldset>
          {diffText && <pre className="diff" data-testid="diff">{diffText}</pre>}
        </aside>
      </main>
    </div>
  );
}


// Names the entity's features already have (but the joined one under `exceptKey`).
function takenNames(features, all, entity, exceptKey) {
  return new Set([...Object.keys(features), ...Object.values(features).map((f) => f.name),
                  ...Object.entries(all).filter(([k, j]) => k !== exceptKey && j.entity === entity).map(([, j]) => j.feature.name)]);
}

// A joined feature for a suggestion, named so that no other feature of the entity has its name.
function newJoined(o, entity, features, all) {
  const taken = takenNames(features, all, entity, null);
  let name = o.name;
  for (let n = 2; taken.has(name); n += 1) name = `${o.name.slice(0, 60)}_${n}`;
  return { entity, kind: o.kind, weight: 1, feature: { name, kind: o.kind, weight: 1, column: o.column, from: o.from } };
}

// Features from related tables: the ones the foreign keys suggest, and the ones already in the mapping.
function JoinedFeatures({ catalog, entity, features, joined, setJoined }) {
  const options = suggestJoined(catalog, entity).map((o) => ({ ...o, suggested: true }));
  for (const [key, j] of Object.entries(joined)) {
    if (j.entity === entity && !options.some((o) => o.key === key)) {
      const first = Array.isArray(j.feature.column) ? j.feature.column[0] : j.feature.column;
      options.push({ key, table: qualified(j.feature.from.table), column: first, name: j.feature.name,
                     via: j.feature.from.link ? j.feature.from.link.table : `${entity.split(".").pop()}.${j.feature.from.entity_column}` });
    }
  }
  if (!options.length) return null;
  const toggle = (o, on) => setJoined((all) => {
    const next = { ...all };
    if (!on) { delete next[o.key]; return next; }
    next[o.key] = newJoined(o, entity, features, all);
    return next;
  });
  const set = (key, patch) => setJoined((all) => ({ ...all, [key]: { ...all[key], ...patch } }));
  // More columns of the same related row in one feature (actor: first_name + last_name).
  const columnsOf = (j) => (Array.isArray(j.feature.column) ? j.feature.column : [j.feature.column]);
  // A suggested feature that still has its suggested name is named after the table once it holds
  // several columns (actor_first_name -> actor), and gets its name back with one column.
  const setColumns = (o, cols) => setJoined((all) => {
    const j = all[o.key];
    const stem = o.table.split(".").pop();
    const taken = takenNames(features, all, entity, o.key);
    let name = j.feature.name;
    if (o.suggested && cols.length > 1 && name === o.name && !taken.has(stem)) name = stem;
    if (o.suggested && cols.length === 1 && name === stem) name = o.name;
    return { ...all, [o.key]: { ...j, feature: { ...j.feature, name, column: cols.length === 1 ? cols[0] : cols } } };
  });
  return (
    <div className="joined" data-testid="joined-features">
      <div className="subhead">From related tables</div>
      {options.map((o) => {
        const j = joined[o.key];
        const id = `${o.table}.${o.column} via ${o.via}`;
        return (
          <div key={o.key} className="feature">
            <label>
              <input type="checkbox" aria-label={`Feature ${id}`} checked={!!j} onChange={(e) => toggle(o, e.target.checked)} />{" "}
              {o.table.split(".").pop()}.{o.column} <span className="type">via {o.via}</span>
            </label>
            {j && (
              <>
                <select aria-label={`Kind of ${id}`} value={j.kind} onChange={(e) => set(o.key, { kind: e.target.value })}>
                  {KINDS.map((k) => <option key={k}>{k}</option>)}
                </select>
                <input type="number" step="0.1" aria-label={`Weight of ${id}`} value={j.weight}
                       onChange={(e) => set(o.key, { weight: e.target.value })} />
              </>
            )}
            {j && (() => {
              const cols = columnsOf(j);
              const more = (table(catalog, o.table)?.columns || [])
                .filter((c) => !cols.includes(c.name) && !table(catalog, o.table).primary_key.includes(c.name) && isText(c.type));
              return (
                <div className="more-columns">
                  {cols.length > 1 && <span className="type">{cols.join(" + ")} </span>}
                  {cols.length > 1 && <button aria-label={`Drop the last column of ${id}`} onClick={() => setColumns(o, cols.slice(0, -1))}>−</button>}
                  {more.length > 0 && cols.length < 8 && (
                    <select aria-label={`Add a column to ${id}`} value="" onChange={(e) => e.target.value && setColumns(o, [...cols, e.target.value])}>
                      <option value="">+ column</option>
                      {more.map((c) => <option key={c.name}>{c.name}</option>)}
                    </select>
                  )}
                </div>
              );
            })()}
          </div>
        );
      })}
    </div>
  );
}

function label(p, id) {
  const l = p.labels?.[id];
  return l ? Object.values(l).find((v) => typeof v === "string") || id : id;
}

function Preview({ p }) {
  if (p.error) return <div role="alert">{p.error}</div>;
  const rows = p.recommendations || p.similar || [];
  return (
    <div className="preview">
      {p.recent && (
        <details open={p.recent.length > 0}>
          <summary>{p.recent.length} recent interactions{p.cold_start ? " — no profile yet: the most popular" : ""}</summary>
          <ul data-testid="preview-recent">
            {p.recent.slice(0, 5).map((r, i) => (
              <li key={i}>{label(p, r.entity_id)} <span className="type">({r.kind}, {r.at.slice(0, 10)})</span></li>
            ))}
          </ul>
        </details>
      )}
      <ol data-testid="preview-results">
        {rows.map((r) => (
          <li key={r.entity_id}>
            {label(p, r.entity_id)} <span className="type">({r.entity_id}, score {Number(r.score).toFixed(3)})</span>
            {r.because && r.because.length > 0 && (
              <div className="because">because of {r.because.slice(0, 2).map((b) => label(p, b.entity_id)).join(", ")}</div>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}
