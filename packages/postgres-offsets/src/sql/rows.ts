/** What `knex.raw` resolves to with the pg client: the rows, typed by the statement's select list. */
export type Rows<T> = { rows: T[]; rowCount: number | null };
