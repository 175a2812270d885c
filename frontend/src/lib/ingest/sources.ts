import type { Stats } from '$lib/api/types';

export interface FailingSource {
	name: string;
	error: string;
}

/**
 * The sources whose last attempt failed, when every source did (ingestion is
 * then not running in any useful sense); empty when at least one source works
 * or the server does not say.
 */
export function allSourcesFailing(stats: Pick<Stats, 'sources'> | null): FailingSource[] {
	const sources = stats?.sources ?? [];
	if (sources.length === 0) return [];
	const failing: FailingSource[] = [];
	for (const source of sources) {
		if (!source.last_error) return [];
		const failedAt = Date.parse(source.last_error_at ?? '');
		const workedAt = Date.parse(source.last_success_at ?? '');
		// A success after the failure means it works again.
		if (!Number.isNaN(workedAt) && (Number.isNaN(failedAt) || workedAt > failedAt)) return [];
		failing.push({ name: source.name, error: source.last_error });
	}
	return failing;
}
