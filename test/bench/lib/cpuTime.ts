/**
 * CPU time as Linux accounts it in /proc, read before and after a benchmark window: how much CPU a process
 * group used (n8n and any child it started), and how busy the whole machine was, including the time the
 * hypervisor gave to other guests (steal). Elsewhere than Linux every reading is null.
 */
import fs from 'node:fs';

/** Linux reports /proc times in clock ticks of 10 ms (USER_HZ = 100 on every architecture Node supports). */
const MS_PER_TICK = 10;

/** CPU milliseconds (user + system) of every process whose process group is `pgid`. */
export function processGroupCpuMs(pgid: number): number | null {
	if (!fs.existsSync('/proc/self/stat')) return null;
	let ticks = 0;
	for (const entry of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		let stat: string;
		try {
			stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
		} catch {
			continue; // the process ended between the listing and the read
		}
		// The command name (field 2) may contain spaces and parentheses: fields are counted after its last ')'.
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		// After the name: state(3) ppid(4) pgrp(5) … utime(14) stime(15), so pgrp is fields[2], utime fields[11].
		if (Number(fields[2]) === pgid) ticks += Number(fields[11]) + Number(fields[12]);
	}
	return ticks * MS_PER_TICK;
}

export interface MachineCpu {
	/** Milliseconds summed over all cores. */
	busyMs: number;
	idleMs: number;
	stealMs: number;
}

/** The machine's CPU accounting since boot (first line of /proc/stat). */
export function machineCpu(): MachineCpu | null {
	if (!fs.existsSync('/proc/stat')) return null;
	const [, ...values] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
	const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
	return { busyMs: (user + nice + system + irq + softirq) * MS_PER_TICK, idleMs: (idle + iowait) * MS_PER_TICK, stealMs: steal * MS_PER_TICK };
}

/** Shares of the machine's time between two readings: busy and steal, in % of all cores' time. */
export function machineShares(before: MachineCpu | null, after: MachineCpu | null): { busyPercent: number; stealPercent: number } | null {
	if (!before || !after) return null;
	const busy = after.busyMs - before.busyMs;
	const steal = after.stealMs - before.stealMs;
	const total = busy + steal + (after.idleMs - before.idleMs);
	if (total <= 0) return null;
	return { busyPercent: (busy / total) * 100, stealPercent: (steal / total) * 100 };
}
