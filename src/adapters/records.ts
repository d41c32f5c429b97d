/** A JSON object (not an array, not null): what every adapter checks before reading fields of parsed input. */
export const isRecord = (value: unknown): value is Record<string, any> => typeof value === 'object' && value !== null && !Array.isArray(value)
