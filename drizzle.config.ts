/** drizzle-kit configuration: generates SQL migrations from src/db/schema.ts into migrations/. */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'turso',
  schema: './src/db/schema.ts',
  out: './migrations',
  dbCredentials: { url: process.env.HOP_DATABASE_URL ?? 'file:./data/hop.db' },
});
