// RFC 9457 problem details: the body of every error answer of our own programs' HTTP APIs
// (the sandbox and agent runtimes; the gateway has its own richer problems), sent with
// this content type. Clients read `detail` as the one line to show.
import { z } from "zod";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
});
export type Problem = z.output<typeof Problem>;
