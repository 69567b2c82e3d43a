// Headless ODK "enumerator": fills XForms with ODK's own engine
// (@getodk/xforms-engine, the engine behind ODK Web Forms) so that tests see the
// same relevance, constraints, choice filters and submission XML as a real client.
//
// Protocol: newline-delimited JSON on stdin, exactly one JSON line per request on
// stdout (nothing else is ever written to stdout; diagnostics go to stderr).
// A bad request never ends the process: it gets {"id", "ok": false, "error"}.
//
// Request:
//   {"id": 1, "xform": "/abs/form.xml", "media_dir": "/abs/dir" | null,
//    "language": "English (en)" | null,
//    "steps": [
//      {"answer": "/data/group/q", "value": "text"},          // input / select_one
//      {"answer": "/data/multi", "value": ["a", "b"]},        // select_multiple
//      {"answer": "/data/q", "value": null},                  // null or "" clears
//      {"add_repeat": "/data/members", "count": 2},           // append instances
//      {"remove_repeat": "/data/members", "index": 0},        // 0-based index
//      {"remove_repeat": "/data/members[2]"}                  // or an instance ref
//    ]}
// Refs are the engine's `currentState.reference`: the instance path from the
// root element (which is the form's root node name, e.g. /data, not always the
// form id), with a 1-based position on every repeat instance:
// /data/members[2]/name. A repeat range itself is /data/members.
//
// Response (ok):
//   {"id", "ok": true, "languages": [...], "language": "active language",
//    "nodes": [{ref, nodeset, type, relevant, required, readonly, value, violation,
//               label, hint, value_type?, select_type?, options?, option_labels?,
//               count?}],
//    "payload": {"status": "ready"|"pending", "violations": [{ref, condition, message}],
//                "xml": text when status is "ready" else null,
//                "draft_xml": the serialized instance whatever the status,
//                "attachments": [file names besides xml_submission_file]}}
//
// Every request creates a fresh form instance: only the form XML text is cached
// (keyed on path, mtime and size), so no interview state leaks between requests.

import { JSDOM } from 'jsdom';
import { readFileSync, statSync } from 'node:fs';
import { basename, extname, isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';

// Keep stdout for protocol lines only: anything the engine or jsdom logs goes to stderr.
for (const method of ['log', 'info', 'debug', 'warn', 'trace']) {
	console[method] = (...args) => console.error(...args);
}
process.on('unhandledRejection', (reason) => {
	console.error('[harness] unhandled rejection:', reason);
});
process.on('uncaughtException', (error) => {
	console.error('[harness] uncaught exception:', error);
});

// The engine expects a browser-like DOM; its bundled Emscripten loader also reads
// `__dirname` and `module` when it detects Node.
const dom = new JSDOM('');
for (const key of [
	'DOMParser',
	'XMLSerializer',
	'Node',
	'Element',
	'Document',
	'XPathResult',
	'NodeFilter',
	'Attr',
	'Text',
	'XMLDocument',
]) {
	if (!(key in globalThis)) globalThis[key] = dom.window[key];
}
globalThis.document = dom.window.document;
globalThis.window = dom.window;
globalThis.__dirname = new URL('./node_modules/@getodk/xforms-engine/dist/', import.meta.url).pathname;
globalThis.module = { exports: {} };
const { createInstance } = await import('@getodk/xforms-engine');

const MIME_BY_EXT = {
	'.csv': 'text/csv',
	'.xml': 'text/xml',
	'.geojson': 'application/geo+json',
	'.json': 'application/json',
	'.jpg': 'image/jpeg',
	'.jpeg': 'image/jpeg',
	'.png': 'image/png',
};

class RequestError extends Error {}

const xformCache = new Map();

function readXForm(path) {
	if (typeof path !== 'string' || !isAbsolute(path)) {
		throw new RequestError(`"xform" must be an absolute path, got ${JSON.stringify(path)}`);
	}
	let stat;
	try {
		stat = statSync(path);
	} catch {
		throw new RequestError(`xform file not found: ${path}`);
	}
	const cached = xformCache.get(path);
	if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.text;
	const text = readFileSync(path, 'utf8');
	xformCache.set(path, { mtimeMs: stat.mtimeMs, size: stat.size, text });
	return text;
}

/** Serves jr://file/... and jr://file-csv/... attachments from media_dir. */
function attachmentFetcher(mediaDir) {
	return async (url) => {
		const name = decodeURIComponent(String(url).split('/').pop());
		if (mediaDir == null) {
			throw new RequestError(
				`form needs attachment ${String(url)} but the request has "media_dir": null`
			);
		}
		let bytes;
		try {
			bytes = readFileSync(join(mediaDir, name));
		} catch {
			throw new RequestError(`form attachment ${String(url)} not found in media_dir ${mediaDir}`);
		}
		const type = MIME_BY_EXT[extname(name).toLowerCase()] ?? 'application/octet-stream';
		const text = new TextDecoder('utf-8').decode(bytes);
		return {
			ok: true,
			status: 200,
			headers: new Headers({ 'content-type': type }),
			text: async () => text,
			blob: async () => new Blob([bytes], { type }),
		};
	};
}

function walk(node, out = []) {
	out.push(node);
	for (const child of node.currentState.children ?? []) walk(child, out);
	return out;
}

function indexByRef(root) {
	const byRef = new Map();
	for (const node of walk(root)) byRef.set(node.currentState.reference, node);
	return byRef;
}

function editDistance(a, b) {
	let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
	for (let i = 1; i <= a.length; i++) {
		const cur = [i];
		for (let j = 1; j <= b.length; j++) {
			cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
		}
		prev = cur;
	}
	return prev[b.length];
}

function closestRefs(ref, byRef, limit = 5) {
	const wanted = String(ref);
	return [...byRef.keys()]
		.map((candidate) => [editDistance(wanted, candidate), candidate])
		.sort((x, y) => x[0] - y[0])
		.slice(0, limit)
		.map(([, candidate]) => candidate);
}

function isBlank(value) {
	return value === null || value === undefined || value === '';
}

function answer(node, value, fail) {
	const type = node.nodeType;
	const state = node.currentState;
	if (type === 'select') {
		const available = state.valueOptions.map((option) => option.value);
		const check = (v) => {
			if (typeof v !== 'string') fail(`choice values must be strings, got ${JSON.stringify(v)}`);
			if (!available.includes(v)) {
				fail(`${JSON.stringify(v)} is not an available choice; options now: ${JSON.stringify(available)}`);
			}
		};
		if (node.selectType === 'select') {
			if (isBlank(value)) return node.selectValues([]);
			if (!Array.isArray(value)) fail('a select_multiple answer must be a list of choice values');
			value.forEach(check);
			return node.selectValues(value);
		}
		if (isBlank(value)) return node.selectValue(null);
		if (Array.isArray(value)) fail('a select_one answer must be one choice value, not a list');
		check(value);
		return node.selectValue(value);
	}
	if (type === 'rank') {
		if (isBlank(value)) return node.setValues([]);
		if (!Array.isArray(value)) fail('a rank answer must be a list of choice values');
		return node.setValues(value);
	}
	if (type === 'trigger') {
		return node.setValue(!(isBlank(value) || value === false || value === 'false'));
	}
	if (type === 'upload') {
		if (isBlank(value)) return node.setValue(null);
		if (typeof value !== 'string' || !isAbsolute(value)) {
			fail('an upload answer must be an absolute path to a file');
		}
		let bytes;
		try {
			bytes = readFileSync(value);
		} catch {
			fail(`upload file not found: ${value}`);
		}
		const mime = MIME_BY_EXT[extname(value).toLowerCase()] ?? 'application/octet-stream';
		return node.setValue(new File([bytes], basename(value), { type: mime }));
	}
	if (type === 'input' || type === 'range') {
		if (isBlank(value)) return node.setValue(type === 'input' && node.valueType === 'string' ? '' : null);
		if (typeof value === 'object') fail(`an ${type} answer must be a string or number, got ${JSON.stringify(value)}`);
		const text = String(value);
		node.setValue(text);
		// The engine silently stores "" for a value its type cannot parse
		// (e.g. "abc" in an int, "2024-02-30" in a date): make that loud.
		if (node.currentState.instanceValue === '') {
			fail(`${JSON.stringify(text)} is not a valid ${node.valueType} value (the engine stored nothing)`);
		}
		return;
	}
	fail(`is a ${type} node, which cannot be answered`);
}

function runStep(root, step, index) {
	const byRef = indexByRef(root);
	const kind = ['answer', 'add_repeat', 'remove_repeat'].find((k) => step && typeof step === 'object' && k in step);
	if (!kind) {
		throw new RequestError(
			`steps[${index}]: expected one of "answer", "add_repeat", "remove_repeat", got ${JSON.stringify(step)}`
		);
	}
	const ref = step[kind];
	const fail = (message) => {
		throw new RequestError(`steps[${index}] ${kind} ${JSON.stringify(ref)}: ${message}`);
	};
	let node = byRef.get(ref);
	if (!node) {
		fail(`no such node; closest refs: ${JSON.stringify(closestRefs(ref, byRef))}`);
	}
	if (kind === 'answer') {
		if (!('value' in step)) fail('missing "value" (use null to clear)');
		if (!node.currentState.relevant) fail('node is not relevant (its relevant condition is false), so it cannot be answered');
		if (node.currentState.readonly) fail(`node is read-only (${node.nodeType})`);
		try {
			answer(node, step.value, fail);
		} catch (error) {
			if (error instanceof RequestError) throw error;
			fail(`engine rejected value ${JSON.stringify(step.value)}: ${error?.message ?? error}`);
		}
		return;
	}
	if (kind === 'remove_repeat' && node.nodeType === 'repeat-instance' && !('index' in step)) {
		const range = node.parent;
		const position = range.currentState.children.indexOf(node);
		node = range;
		step = { ...step, index: position };
	}
	if (node.nodeType === 'repeat-range:controlled') {
		fail('repeat is controlled by jr:count: answer its count question instead');
	}
	if (node.nodeType !== 'repeat-range:uncontrolled') {
		fail(`is a ${node.nodeType} node, not a repeat (a repeat range ref has no [n], e.g. /data/members)`);
	}
	if (!node.currentState.relevant) fail('repeat is not relevant (its relevant condition is false)');
	const count = step.count ?? 1;
	if (!Number.isInteger(count) || count < 1) fail(`"count" must be a positive integer, got ${JSON.stringify(step.count)}`);
	try {
		if (kind === 'add_repeat') {
			node.addInstances(undefined, count);
		} else {
			const size = node.currentState.children.length;
			const at = step.index;
			if (!Number.isInteger(at) || at < 0 || at + count > size) {
				fail(`"index" must be a 0-based integer with index+count <= ${size} instances, got index ${JSON.stringify(at)}, count ${count}`);
			}
			node.removeInstances(at, count);
		}
	} catch (error) {
		if (error instanceof RequestError) throw error;
		fail(`engine error: ${error?.message ?? error}`);
	}
}

function valueOf(node) {
	const state = node.currentState;
	switch (node.nodeType) {
		case 'select':
			return node.selectType === 'select' ? [...state.value] : (state.value[0] ?? '');
		case 'rank':
			return [...state.value];
		case 'input':
		case 'range':
		case 'trigger':
		case 'upload':
		case 'note':
		case 'model-value':
		case 'attribute':
			return state.instanceValue ?? null;
		default:
			return null;
	}
}

function violationOf(node) {
	const violation = node.validationState?.violation;
	if (!violation) return null;
	return { condition: violation.condition, message: violation.message?.asString ?? null };
}

function describe(node) {
	const state = node.currentState;
	const described = {
		ref: state.reference,
		nodeset: node.definition.nodeset,
		type: node.nodeType,
		relevant: state.relevant,
		required: state.required,
		readonly: state.readonly,
		value: valueOf(node),
		violation: violationOf(node),
		label: state.label?.asString ?? null,
		hint: state.hint?.asString ?? null,
	};
	if (node.valueType) described.value_type = node.valueType;
	if (node.nodeType === 'select') {
		described.select_type = node.selectType;
		described.options = state.valueOptions.map((option) => option.value);
		described.option_labels = state.valueOptions.map((option) => option.label?.asString ?? null);
	}
	if (node.nodeType.startsWith('repeat-range')) described.count = state.children.length;
	return described;
}

function languageNames(root) {
	return root.languages.filter((l) => !l.isSyntheticDefault).map((l) => l.language);
}

function chooseLanguage(root, wanted) {
	if (wanted == null) return;
	const names = languageNames(root);
	const found =
		root.languages.find((l) => l.language === wanted) ??
		root.languages.find((l) => !l.isSyntheticDefault && (l.language.match(/\(([^)]+)\)\s*$/)?.[1] === wanted));
	if (!found) {
		throw new RequestError(`language ${JSON.stringify(wanted)} not in form; available: ${JSON.stringify(names)}`);
	}
	root.setLanguage(found);
}

async function payloadOf(root) {
	const payload = await root.prepareInstancePayload();
	const data = payload.data[0];
	const file = data.get('xml_submission_file');
	const xml = file ? await file.text() : null;
	return {
		status: payload.status,
		violations: (payload.violations ?? []).map((v) => ({
			ref: v.reference,
			condition: v.violation.condition,
			message: v.violation.message?.asString ?? null,
		})),
		xml: payload.status === 'ready' ? xml : null,
		draft_xml: xml,
		attachments: [...data.keys()].filter((k) => k !== 'xml_submission_file'),
	};
}

async function handle(request) {
	if (!request || typeof request !== 'object' || Array.isArray(request)) {
		throw new RequestError('request must be a JSON object');
	}
	const steps = request.steps ?? [];
	if (!Array.isArray(steps)) throw new RequestError('"steps" must be a list');
	const mediaDir = request.media_dir ?? null;
	if (mediaDir !== null && (typeof mediaDir !== 'string' || !isAbsolute(mediaDir))) {
		throw new RequestError(`"media_dir" must be an absolute path or null, got ${JSON.stringify(mediaDir)}`);
	}
	const xml = readXForm(request.xform);
	let instance;
	try {
		instance = await createInstance(xml, {
			form: { fetchFormAttachment: attachmentFetcher(mediaDir) },
		});
	} catch (error) {
		throw new RequestError(`could not load form ${request.xform}: ${error?.message ?? error}`);
	}
	const { root } = instance;
	chooseLanguage(root, request.language);
	steps.forEach((step, index) => runStep(root, step, index));
	return {
		languages: languageNames(root),
		language: root.currentState.activeLanguage.language || null,
		nodes: walk(root).map(describe),
		payload: await payloadOf(root),
	};
}

function reply(message) {
	process.stdout.write(`${JSON.stringify(message)}\n`);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
	if (line.trim() === '') continue;
	let request;
	try {
		request = JSON.parse(line);
	} catch (error) {
		reply({ id: null, ok: false, error: `request is not valid JSON: ${error.message}` });
		continue;
	}
	const id = request?.id ?? null;
	try {
		reply({ id, ok: true, ...(await handle(request)) });
	} catch (error) {
		if (!(error instanceof RequestError)) console.error('[harness] unexpected error:', error);
		reply({ id, ok: false, error: error instanceof RequestError ? error.message : `internal error: ${error?.stack ?? error}` });
	}
}
