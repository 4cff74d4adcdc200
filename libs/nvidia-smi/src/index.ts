export * from './types.ts';
export * from './errors.ts';
export { placeholderReason } from './field-value.ts';
export { parseInventoryXml, MAX_INVENTORY_XML_CHARS } from './parse-inventory-xml.ts';
export { parseGpuQueryCsv, parseComputeAppsCsv, MAX_CSV_CHARS } from './parse-csv.ts';
export { canonicalFieldName } from './csv-fields.ts';
