// Checks a function tool definition as the user types, before the server sees it.

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const RESERVED = new Set(["file_search", "code_interpreter"]);
const TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);
const FUNCTION_KEYS = new Set(["name", "description", "parameters", "strict"]);

function jsonError(text, err) {
  const m = /position (\d+)/.exec(err.message);
  if (!m) return err.message;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  const col = pos - before.lastIndexOf("\n");
  return `${err.message.replace(/ in JSON at position \d+.*$/, "")} (line ${line}, column ${col})`;
}

function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

// A JSON Schema, checked for the mistakes that matter in tool parameters.
export function checkSchema(node, path, errors) {
  if (!isObject(node)) { errors.push(`${path}: a schema must be an object`); return; }
  if ("type" in node) {
    const types = Array.isArray(node.type) ? node.type : [node.type];
    for (const t of types) if (!TYPES.has(t)) errors.push(`${path}.type: unknown type ${JSON.stringify(t)}`);
  }
  if ("properties" in node) {
    if (!isObject(node.properties)) errors.push(`${path}.properties: must be an object`);
    else for (const [k, v] of Object.entries(node.properties)) checkSchema(v, `${path}.properties.${k}`, errors);
  }
  if ("required" in node) {
    if (!Array.isArray(node.required) || node.required.some((r) => typeof r !== "string")) errors.push(`${path}.required: must be an array of strings`);
    else if (isObject(node.properties)) {
      for (const r of node.required) if (!(r in node.properties)) errors.push(`${path}.required: "${r}" is not in properties`);
    }
  }
  if ("items" in node) {
    if (Array.isArray(node.items)) node.items.forEach((s, i) => checkSchema(s, `${path}.items[${i}]`, errors));
    else checkSchema(node.items, `${path}.items`, errors);
  }
  if ("enum" in node && (!Array.isArray(node.enum) || node.enum.length === 0)) errors.push(`${path}.enum: must be a non-empty array`);
  if ("additionalProperties" in node && typeof node.additionalProperties !== "boolean") checkSchema(node.additionalProperties, `${path}.additionalProperties`, errors);
  if ("description" in node && typeof node.description !== "string") errors.push(`${path}.description: must be a string`);
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (key in node) {
      if (!Array.isArray(node[key])) errors.push(`${path}.${key}: must be an array`);
      else node[key].forEach((s, i) => checkSchema(s, `${path}.${key}[${i}]`, errors));
    }
  }
}

// → {value, errors}: `value` is the parsed function definition when there are no errors.
export function checkFunction(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { value: null, errors: [`Invalid JSON: ${jsonError(text, err)}`] };
  }
  const errors = [];
  if (!isObject(value)) return { value: null, errors: ["The function must be a JSON object"] };
  for (const k of Object.keys(value)) if (!FUNCTION_KEYS.has(k)) errors.push(`unknown field "${k}" (allowed: name, description, parameters, strict)`);
  if (typeof value.name !== "string") errors.push('name: required, a string');
  else if (!NAME.test(value.name)) errors.push("name: 1 to 64 letters, digits, _ or -");
  else if (RESERVED.has(value.name)) errors.push(`name: "${value.name}" is reserved for the built-in tool`);
  if ("description" in value && typeof value.description !== "string") errors.push("description: must be a string");
  if ("strict" in value && typeof value.strict !== "boolean" && value.strict !== null) errors.push("strict: must be true or false");
  if ("parameters" in value) {
    checkSchema(value.parameters, "parameters", errors);
    if (isObject(value.parameters) && value.parameters.type !== undefined && value.parameters.type !== "object") errors.push('parameters.type: must be "object"');
  }
  return { value: errors.length ? null : value, errors };
}

// A response_format json_schema: {name, schema, description?, strict?}.
export function checkJsonSchemaFormat(text) {
  let value;
  try { value = JSON.parse(text); } catch (err) { return { value: null, errors: [`Invalid JSON: ${jsonError(text, err)}`] }; }
  const errors = [];
  if (!isObject(value)) return { value: null, errors: ["must be a JSON object: {name, schema, strict}"] };
  if (typeof value.name !== "string" || !NAME.test(value.name)) errors.push("name: required, 1 to 64 letters, digits, _ or -");
  if ("schema" in value) checkSchema(value.schema, "schema", errors);
  return { value: errors.length ? null : value, errors };
}
