/** CPU time per process tree from /proc (Linux), to show where a load went on this 2-core machine. */
import fs from 'node:fs';

/** /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second for user space. */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds of a process and all its live descendants (found by parent PID, so it also covers children that
 * left the process group, e.g. postgres under runuser): utime + stime, plus cutime + cstime (children already
 * reaped).
 */
export function treeCpuSeconds(rootPid: number | undefined): number {
	if (!rootPid || process.platform !== 'linux') return NaN;
	const procs = new Map<number, { ppid: number; ticks: number }>();
	let entries: string[] = [];
	try {
		entries = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
	} catch {
		return NaN;
	}
	for (const pid of entries) {
		let stat = '';
		try {
			stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		} catch {
			continue;
		}
		// Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		procs.set(Number(pid), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) });
	}
	if (!procs.has(rootPid)) return NaN;
	let ticks = 0;
	const queue = [rootPid];
	const seen = new Set<number>();
	for (let guard = 0; queue.length > 0 && guard < 100_000; guard++) {
		const pid = queue.pop() as number;
		if (seen.has(pid)) continue;
		seen.add(pid);
		ticks += procs.get(pid)?.ticks ?? 0;
		for (const [child, info] of procs) if (info.ppid === pid) queue.push(child);
	}
	return ticks / TICKS_PER_SECOND;
}

export function snapshot(roots: Record<string, number | undefined>): Record<string, number> {
	const out: Record<string, number> = {};
	for (const [name, pid] of Object.entries(roots)) out[name] = treeCpuSeconds(pid);
	const own = process.cpuUsage();
	out['test process (simulator + push client)'] = (own.user + own.system) / 1e6;
	return out;
}

export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
	const out: Record<string, number> = {};
	for (const name of Object.keys(after)) out[name] = +(after[name] - (before[name] ?? 0)).toFixed(1);
	return out;
}
