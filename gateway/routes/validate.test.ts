import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkspaceKind } from "../../api/v1alpha1/index.ts";
import { Problem } from "../problem.ts";
import {
  CREATED_BY,
  LAST_MODIFIED_BY,
  checkPathNames,
  etagVersion,
  mergePatch,
  prepareObject,
  stamp,
} from "./validate.ts";

const ws = { metadata: { name: "w" }, spec: { fleetRef: { name: "f" } } };

describe("mergePatch (RFC 7386)", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [["a"], { a: "b" }, { a: "b" }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  ];
  for (const [target, patch, want] of cases)
    it(`${JSON.stringify(target)} + ${JSON.stringify(patch)}`, () =>
      assert.deepEqual(mergePatch(target, patch), want));
});

describe("prepareObject", () => {
  it("fills apiVersion, kind and namespace and drops status", () => {
    const o = prepareObject(WorkspaceKind, { ...ws, status: { phase: "x" } }, { namespace: "ns" });
    assert.equal(o.apiVersion, "agentry.dev/v1alpha1");
    assert.equal(o.kind, "Workspace");
    assert.equal(o.metadata.namespace, "ns");
    assert.equal(o.status, undefined);
  });
  const bad: [string, unknown, string][] = [
    ["kind mismatch", { ...ws, kind: "Pipeline" }, "kind"],
    ["namespace mismatch", { ...ws, metadata: { name: "w", namespace: "other" } }, "metadata.namespace"],
    ["name mismatch on replace", { ...ws, metadata: { name: "other" } }, "metadata.name"],
    ["spec field", { ...ws, spec: {} }, "spec.fleetRef"],
  ];
  for (const [what, body, path] of bad)
    it(`rejects ${what} with 422 naming ${path}`, () => {
      try {
        prepareObject(WorkspaceKind, body, { namespace: "ns", name: "w" });
        assert.fail("accepted");
      } catch (err) {
        assert.ok(err instanceof Problem);
        assert.equal(err.status, 422);
        assert.ok(
          err.init.errors?.some((e) => e.path === path),
          JSON.stringify(err.init.errors),
        );
      }
    });
  it("rejects a body that is not an object with 400", () => {
    assert.throws(
      () => prepareObject(WorkspaceKind, [1], { namespace: "ns" }),
      (e: Problem) => e.status === 400,
    );
  });
});

describe("stamp and etagVersion", () => {
  it("stamps creator and last modifier", () => {
    const o = stamp(prepareObject(WorkspaceKind, ws, { namespace: "ns" }), "alice", true);
    assert.equal(o.metadata.annotations?.[CREATED_BY], "alice");
    assert.equal(o.metadata.annotations?.[LAST_MODIFIED_BY], "alice");
  });
  const tags: [string | undefined, string | undefined][] = [
    ['"42"', "42"],
    ['W/"42"', "42"],
    ["42", "42"],
    [undefined, undefined],
    ['"a", "b"', undefined],
    [">", undefined],
  ];
  for (const [h, want] of tags) it(`${h}`, () => assert.equal(etagVersion(h), want));
});

describe("checkPathNames", () => {
  const bad: [string | undefined, string | undefined][] = [
    ["..", undefined],
    ["a/b", undefined],
    ["nä", undefined],
    ["Upper", undefined],
    ["n".repeat(64), undefined],
    [undefined, ".."],
    [undefined, "."],
    [undefined, "a/../b"],
    [undefined, "a\u0000b"],
    [undefined, "wörk"],
    [undefined, "x".repeat(254)],
  ];
  for (const [ns, name] of bad)
    it(`refuses ${JSON.stringify(ns ?? name)} with 400`, () =>
      assert.throws(
        () => checkPathNames(ns, name),
        (e: Error & { status?: number }) => e.status === 400,
      ));
  it("accepts ordinary names", () => {
    checkPathNames("team-a", "agent.v1-2");
    checkPathNames("a".repeat(63), "b".repeat(253));
  });
});
