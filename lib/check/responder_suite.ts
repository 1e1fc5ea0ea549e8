import type { Logger } from "../log.ts";
import type { CheckCase } from "./cases.ts";
import type { CaseResult } from "./runner.ts";
export interface ResponderSuiteOptions {
  command?: string[];
  broker?: { host: string; port: number };
  trust: string[];
  netid?: string;
  hostFlag?: string;
  portFlag: string;
  deadlineMs: number;
  waitMs: number;
  logger?: Logger;
}
export function runResponderSuite(
  _cases: readonly CheckCase[],
  _options: ResponderSuiteOptions,
  _hooks: { onResult?: (result: CaseResult) => void; signal?: AbortSignal } = {},
): Promise<CaseResult[]> {
  return Promise.resolve([]);
}
