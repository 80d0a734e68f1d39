// The mapper: edits a mapping document in the browser and lets the server do everything that
// needs the engine (compiling, previewing, saving, publishing). No framework, no build step.
//
// Mapping a field: drag a Shopify field onto a D365 field with the pointer (mouse, pen or
// touch), or, without a pointer, select a Shopify field (click, Enter or Space) and then a D365
// field. Every change re-runs the live preview.

const data = JSON.parse(document.getElementById('mapper-data').textContent);
const root = document.getElementById('mapper');
const canEdit = root.dataset.canEdit === 'true';
const csrf = root.dataset.csrf;
const doc = data.document;
doc.rules = doc.rules || [];

const $ = (id) => document.getElementById(id);
let selectedSource = null;
let selectedTarget = null;
let dirty = false;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function ruleFor(target) {
  return doc.rules.find((r) => r.target === target);
}

function describeSource(rule) {
  if (!rule || !rule.source) return '';
  const [kind, value] = Object.entries(rule.source)[0] || [];
  if (kind === 'path') return value;
  if (kind === 'const') return `"${typeof value === 'string' ? value : JSON.stringify(value)}"`;
  if (kind === 'expr') return `ƒ ${value}`;
  return `${kind}: ${value}`;
}

// ---- Source fields ----------------------------------------------------------------------

function renderSources() {
  const filter = $('source-search').value.trim().toLowerCase();
  const list = $('source-fields');
  list.replaceChildren();
  for (const field of data.sources) {
    if (filter && !field.path.toLowerCase().includes(filter)) continue;
    const chip = el('button', {
      type: 'button',
      class: 'field-chip' + (selectedSource === field.path ? ' selected' : ''),
      'data-path': field.path,
      'aria-pressed': String(selectedSource === field.path),
      title: 'Drag onto a D365 field, or select it and then a D365 field',
    }, el('span', { class: 'path', text: field.path }), el('span', { class: 'type', text: field.type }));
    chip.addEventListener('click', () => {
      if (chip.dataset.dragged) { delete chip.dataset.dragged; return; }
      selectedSource = selectedSource === field.path ? null : field.path;
      renderSources();
      announce(selectedSource ? `Selected ${field.path}. Now choose a D365 field.` : 'Selection cleared.');
    });
    if (canEdit) chip.addEventListener('pointerdown', (event) => startDrag(event, chip, field.path));
    list.append(el('li', {}, chip));
  }
  if (!list.children.length) list.append(el('li', { class: 'empty', text: 'No field matches.' }));
}

// ---- Target fields ----------------------------------------------------------------------

function renderTargets() {
  const box = $('target-fields');
  box.replaceChildren();
  const missing = [];
  for (const entity of data.targets) {
    const rows = el('div', { class: 'target-list' });
    for (const field of entity.fields) {
      const target = `${entity.name}.${field.name}`;
      const rule = ruleFor(target);
      const needed = field.required && !field.from_connection;
      if (needed && !rule) missing.push(target);
      const facts = [field.type];
      if (field.max_length) facts.push(`≤ ${field.max_length}`);
      if (field.key) facts.push('key');
      if (field.custom) facts.push('custom');
      const row = el('button', {
        type: 'button',
        class: 'target' + (rule ? ' mapped' : '') + (needed && !rule ? ' unmapped-required' : '')
          + (selectedTarget === target ? ' selected' : ''),
        'data-target': target,
        'aria-label': `${target}${needed ? ' (required)' : ''}${rule ? `, mapped from ${describeSource(rule)}` : (field.from_connection ? ', set from the connection' : ', not mapped')}`,
      },
      el('span', { class: 'name' }, document.createTextNode(field.name),
        needed ? el('abbr', { class: 'req', title: 'required', text: ' *' }) : null),
      el('span', { class: 'facts', text: facts.join(' · ') }),
      el('span', { class: 'mapping', text: rule ? describeSource(rule)
        : (field.from_connection ? 'set from the connection' : (needed ? 'required — not mapped' : '')) }));
      row.addEventListener('click', () => {
        if (selectedSource && canEdit) {
          mapSource(target, selectedSource);
          selectedSource = null;
          renderSources();
        }
        selectedTarget = target;
        renderTargets();
        renderRuleEditor();
      });
      rows.append(row);
    }
    box.append(el('section', { class: 'entity' },
      el('h3', { text: entity.name + (entity.many ? ' (one per line)' : '') }), rows));
  }
  const warn = $('required-missing');
  warn.hidden = missing.length === 0;
  warn.textContent = missing.length ? `Required and not mapped: ${missing.join(', ')}` : '';
}

function mapSource(target, path) {
  const rule = ruleFor(target);
  if (rule) rule.source = { path };
  else doc.rules.push({ target, source: { path } });
  announce(`${target} now reads ${path}.`);
  changed();
}

// ---- Pointer drag -----------------------------------------------------------------------

function startDrag(event, chip, path) {
  if (event.button !== 0) return;
  const start = { x: event.clientX, y: event.clientY };
  let ghost = null;
  let over = null;
  const move = (e) => {
    if (!ghost) {
      if (Math.hypot(e.clientX - start.x, e.clientY - start.y) < 5) return;
      ghost = el('div', { class: 'drag-ghost', text: path, 'aria-hidden': 'true' });
      document.body.append(ghost);
      document.body.classList.add('dragging');
    }
    ghost.style.left = `${e.clientX + 12}px`;
    ghost.style.top = `${e.clientY + 8}px`;
    const hit = document.elementFromPoint(e.clientX, e.clientY);
    const target = hit && hit.closest('.target');
    if (target !== over) {
      if (over) over.classList.remove('drop-over');
      over = target;
      if (over) over.classList.add('drop-over');
    }
    e.preventDefault();
  };
  const up = () => {
    window.removeEventListener('pointermove', move);
    window.removeEventListener('pointerup', up);
    window.removeEventListener('pointercancel', up);
    if (!ghost) return; // A click, not a drag.
    ghost.remove();
    document.body.classList.remove('dragging');
    chip.dataset.dragged = '1';
    setTimeout(() => delete chip.dataset.dragged, 0);
    if (over) {
      const target = over.dataset.target;
      over.classList.remove('drop-over');
      mapSource(target, path);
      selectedTarget = target;
      renderTargets();
      renderRuleEditor();
    }
  };
  window.addEventListener('pointermove', move);
  window.addEventListener('pointerup', up);
  window.addEventListener('pointercancel', up);
}

// ---- Rule editor ------------------------------------------------------------------------

function renderRuleEditor() {
  const box = $('rule-editor');
  box.replaceChildren();
  if (!selectedTarget) {
    box.append(el('p', { class: 'empty', text: 'Select a D365 field to edit its rule.' }));
    return;
  }
  const rule = ruleFor(selectedTarget);
  box.append(el('p', {}, el('code', { text: selectedTarget })));
  if (!rule) {
    box.append(el('p', { class: 'empty', text: 'Not mapped. Drag a Shopify field here, or:' }));
    if (canEdit) {
      box.append(el('button', { type: 'button', text: 'Set a constant', onclick: () => {
        doc.rules.push({ target: selectedTarget, source: { const: '' } }); changed(); renderRuleEditor();
      } }), ' ', el('button', { type: 'button', text: 'Write an expression', onclick: () => {
        doc.rules.push({ target: selectedTarget, source: { expr: 'src.name' } }); changed(); renderRuleEditor();
      } }));
    }
    return;
  }
  const [kind, value] = Object.entries(rule.source || { path: '' })[0] || ['path', ''];
  const kindSelect = el('select', { id: 'rule-kind', disabled: !canEdit },
    ...['path', 'const', 'expr', 'metafield', 'note_attribute'].map((k) =>
      el('option', { value: k, selected: k === kind, text: { path: 'Shopify field', const: 'Constant', expr: 'CEL expression', metafield: 'Metafield (ns.key)', note_attribute: 'Note attribute' }[k] })));
  const input = kind === 'expr'
    ? el('textarea', { id: 'rule-value', rows: '3', spellcheck: 'false', disabled: !canEdit })
    : el('input', { id: 'rule-value', type: 'text', disabled: !canEdit });
  input.value = typeof value === 'string' ? value : JSON.stringify(value);
  const apply = () => {
    const k = kindSelect.value;
    let v = input.value;
    if (k === 'const') { try { v = JSON.parse(v); } catch { /* plain text constant */ } }
    rule.source = { [k]: v };
    changed();
  };
  kindSelect.addEventListener('change', () => { apply(); renderRuleEditor(); });
  input.addEventListener('input', apply);
  box.append(el('label', {}, 'Source', kindSelect), el('label', {}, 'Value', input));

  const list = el('ol', { class: 'transforms' });
  (rule.transforms || []).forEach((t, i) => {
    const text = el('input', { type: 'text', class: 'transform-json', 'aria-label': `Transform ${i + 1} (${t.op})`, disabled: !canEdit });
    text.value = JSON.stringify(t);
    text.addEventListener('change', () => {
      try { rule.transforms[i] = JSON.parse(text.value); text.classList.remove('invalid'); changed(); }
      catch { text.classList.add('invalid'); }
    });
    list.append(el('li', {}, text, canEdit ? el('button', { type: 'button', class: 'link', text: '✕', 'aria-label': `Remove ${t.op}`, onclick: () => {
      rule.transforms.splice(i, 1); if (!rule.transforms.length) delete rule.transforms; changed(); renderRuleEditor();
    } }) : null));
  });
  box.append(el('h3', { text: 'Transforms' }), list);
  if (canEdit) {
    const palette = el('select', { id: 'palette', 'aria-label': 'Add a transform' },
      el('option', { value: '', text: 'Add a transform…' }),
      ...data.palette.map(([name, json]) => el('option', { value: json, text: name })));
    palette.addEventListener('change', () => {
      if (!palette.value) return;
      rule.transforms = rule.transforms || [];
      rule.transforms.push(JSON.parse(palette.value));
      changed();
      renderRuleEditor();
    });
    box.append(palette, el('p', {}, el('button', { type: 'button', class: 'danger', text: 'Remove rule', onclick: () => {
      doc.rules = doc.rules.filter((r) => r !== rule); changed(); renderRuleEditor();
    } })));
  }
}

// ---- Suggestions and value tables -------------------------------------------------------

function renderSuggestions() {
  const list = $('suggestions');
  list.replaceChildren();
  const open = data.suggestions.filter((s) => !ruleFor(s.target));
  for (const s of open) {
    list.append(el('li', {}, el('code', { text: s.target }), ' ← ', el('code', { text: s.source }), ' ',
      canEdit ? el('button', { type: 'button', class: 'link apply-suggestion', text: 'Apply', 'aria-label': `Map ${s.target} from ${s.source}`, onclick: () => {
        mapSource(s.target, s.source);
      } }) : null));
  }
  if (!open.length) list.append(el('li', { class: 'empty', text: 'No suggestions for unmapped fields.' }));
}

function setupValueTables() {
  const area = $('value-tables');
  area.value = JSON.stringify(doc.value_tables || {}, null, 2);
  area.disabled = !canEdit;
  area.addEventListener('input', () => {
    const error = $('value-tables-error');
    try {
      const tables = JSON.parse(area.value);
      if (typeof tables !== 'object' || Array.isArray(tables) || tables === null) throw new Error('an object of tables');
      doc.value_tables = tables;
      error.hidden = true;
      changed();
    } catch (e) {
      error.hidden = false;
      error.textContent = `Not valid: ${e.message}`;
    }
  });
}

// ---- Server calls -----------------------------------------------------------------------

async function post(path, fields) {
  const body = new URLSearchParams({ csrf, document: JSON.stringify(doc), ...fields });
  const response = await fetch(data.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    credentials: 'same-origin',
  });
  let json = null;
  try { json = await response.json(); } catch { /* an HTML error page */ }
  if (!json) throw new Error(response.status === 403 ? 'Your session expired: reload the page.' : `The server answered ${response.status}.`);
  return { status: response.status, json };
}

function renderProblems(problems) {
  const list = $('problems');
  list.replaceChildren(...(problems || []).map((p) =>
    el('li', { class: 'field-error' }, el('code', { text: p.rule }), ` ${p.path ? `(${p.path}) ` : ''}${p.reason}`)));
}

let previewSeq = 0;
let previewTimer = null;

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(runPreview, 250);
}

async function runPreview() {
  const seq = ++previewSeq;
  $('preview-status').textContent = 'Previewing…';
  let result;
  try {
    result = await post('/preview', { sample: $('sample').value });
  } catch (e) {
    if (seq === previewSeq) $('preview-status').textContent = e.message;
    return;
  }
  if (seq !== previewSeq) return; // A newer edit is being previewed.
  const { json } = result;
  renderProblems(json.problems);
  if (json.error && !json.trace) {
    $('preview-status').textContent = json.error;
    return;
  }
  if (json.problems && json.problems.length) {
    $('preview-status').textContent = `The mapping does not compile: ${json.problems.length} problem(s).`;
    $('preview-output').textContent = '';
    $('preview-trace').replaceChildren();
    root.dataset.previewState = 'invalid';
    return;
  }
  const failed = (json.trace || []).filter((t) => t.error).length;
  $('preview-status').textContent = `Preview of the ${json.sample}: ${json.trace.length} rule results, ${failed ? `${failed} failed` : 'all succeeded'}.`;
  $('preview-output').textContent = JSON.stringify(json.output, null, 2);
  $('preview-trace').replaceChildren(...json.trace.map((t) => el('tr', { class: t.error ? 'failed' : '' },
    el('td', {}, el('code', { text: t.target })),
    el('td', { text: t.record === undefined ? '' : String(t.record + 1) }),
    el('td', {}, el('code', { text: JSON.stringify(t.source) })),
    el('td', { text: t.steps.map((s) => `${s.op} → ${JSON.stringify(s.output)}`).join('; ') }),
    el('td', {}, t.error ? el('span', { class: 'field-error', text: t.error }) : el('code', { text: JSON.stringify(t.value) })))));
  root.dataset.previewState = failed ? 'failed' : 'ok';
}

async function saveDraft() {
  const status = $('save-status');
  status.textContent = 'Saving…';
  try {
    const { json } = await post('/draft', {});
    if (!json.saved) { renderProblems(json.problems); status.textContent = 'Not saved: the document is malformed.'; return; }
    dirty = false;
    $('origin').textContent = 'editing draft';
    status.textContent = json.problems.length
      ? `Draft saved, with ${json.problems.length} problem(s) to fix before publishing.`
      : 'Draft saved.';
  } catch (e) { status.textContent = e.message; }
}

async function publish() {
  const status = $('save-status');
  status.textContent = 'Publishing…';
  try {
    const { json } = await post('/publish', { note: $('publish-note').value });
    if (!json.published) {
      renderProblems(json.problems);
      status.textContent = json.error || `Not published: ${json.problems.length} problem(s) — see the preview.`;
      return;
    }
    dirty = false;
    status.textContent = `Published ${json.version}. Runs use it from now on.`;
    $('published-version').textContent = json.version;
    $('origin').textContent = `editing ${json.version}`;
    setTimeout(() => window.location.reload(), 600);
  } catch (e) { status.textContent = e.message; }
}

// ---- Wiring -----------------------------------------------------------------------------

const live = el('div', { class: 'visually-hidden', 'aria-live': 'polite', id: 'mapper-announce' });
document.body.append(live);
function announce(text) { live.textContent = text; }

function changed() {
  dirty = true;
  renderTargets();
  renderSuggestions();
  schedulePreview();
}

$('source-search').addEventListener('input', renderSources);
const sample = $('sample');
for (const s of data.samples) sample.append(el('option', { value: s.id, text: s.label }));
sample.addEventListener('change', schedulePreview);
if (canEdit) {
  $('save-draft').addEventListener('click', saveDraft);
  $('publish').addEventListener('click', publish);
}
window.addEventListener('beforeunload', (event) => { if (dirty) event.preventDefault(); });

renderSources();
renderTargets();
renderRuleEditor();
renderSuggestions();
setupValueTables();
runPreview();
