/**
 * Placeholder so the infrastructure synthesizes before the real handler lands; replace freely.
 * @module
 */
export const handler = async () => ({ statusCode: 503 })
