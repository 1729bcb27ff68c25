"""Templates through real runs (SPEC §7)."""
from conftest import integration, set_task


def render(braid, values, payload=None):
    """Publish a one-task integration setting VALUES, run it, return its output vars."""
    braid.publish(integration("tpl/x", [set_task("t", values)], outputs=sorted(values)))
    rec = braid.run_json("tpl/x", payload or {})
    assert rec["status"] == "succeeded", rec["error"]
    return rec["output"]


def test_arithmetic_and_typing(braid):
    out = render(braid, {
        "add": "{{vars.n + 1}}",
        "mix": "{{vars.n + 0.5}}",
        "sub": "{{7 - 10}}",
        "mul": "{{vars.n * 3}}",
        "div_exact": "{{6 / 3}}",
        "div_real": "{{7 / 2}}",
        "mod": "{{7 % 3}}",
        "prec": "{{1 + 2 * 3}}",
        "paren": "{{(1 + 2) * 3}}",
        "neg": "{{-vars.n}}",
        "join": "{{'a' + vars.s}}",
        "interp": "n={{vars.n}}, s={{vars.s}}, x={{vars.missing}}, o={{vars.o}}",
        "float_whole": "{{1.5 + 1.5}}",
    }, {"n": 5, "s": "b", "o": {"k": [1, None]}})
    assert out == {
        "add": 6, "mix": 5.5, "sub": -3, "mul": 15, "div_exact": 2, "div_real": 3.5, "mod": 1,
        "prec": 7, "paren": 9, "neg": -5, "join": "ab",
        "interp": 'n=5, s=b, x=, o={"k":[1,null]}', "float_whole": 3.0,
    }
    assert isinstance(out["div_exact"], int)
    assert isinstance(out["float_whole"], float)


def test_whole_value_keeps_json_type(braid):
    out = render(braid, {"obj": "{{vars.o}}", "arr": "{{vars.a}}", "t": "{{vars.t}}",
                         "n": "{{vars.nothing}}", "str": "{{vars.num}}", "txt": " {{vars.num}}"},
                 {"o": {"x": 1}, "a": [1, 2], "t": True, "num": 12})
    assert out == {"obj": {"x": 1}, "arr": [1, 2], "t": True, "n": None, "str": 12,
                   "txt": " 12"}


def test_comparisons_logic_ternary(braid):
    out = render(braid, {
        "gt": "{{vars.total > 100}}",
        "le": "{{vars.total <= 100}}",
        "eq_deep": "{{vars.o == vars.o2}}",
        "ne": "{{vars.s != 'x'}}",
        "str_lt": "{{'abc' < 'abd'}}",
        "and": "{{vars.total > 1 && vars.active}}",
        "or": "{{vars.missing || 'fallback'}}",
        "not": "{{!vars.active}}",
        "tern": "{{vars.total > 100 ? 'gold' : 'standard'}}",
        "falsy_zero": "{{0 ? 'y' : 'n'}}",
        "falsy_empty": "{{'' ? 'y' : 'n'}}",
        "falsy_null": "{{null ? 'y' : 'n'}}",
        "truthy_list": "{{vars.o ? 'y' : 'n'}}",
        "num_eq": "{{1 == 1.0}}",
    }, {"total": 150, "o": {"a": [1, {"b": 2}]}, "o2": {"a": [1, {"b": 2}]}, "s": "y",
        "active": True})
    assert out == {
        "gt": True, "le": False, "eq_deep": True, "ne": True, "str_lt": True, "and": True,
        "or": out["or"], "not": False, "tern": "gold", "falsy_zero": "n", "falsy_empty": "n",
        "falsy_null": "n", "truthy_list": "y", "num_eq": True,
    }
    assert out["or"] in (True, "fallback")


def test_paths(braid):
    out = render(braid, {
        "idx": "{{vars.list[1]}}",
        "neg_idx": "{{vars.list[-1]}}",
        "quoted": '{{vars.o["a.b"]}}',
        "dyn": "{{vars.list[vars.i]}}",
        "deep": "{{vars.o.c.d[0].e}}",
        "missing": "{{vars.o.nope.deeper}}",
        "oob": "{{vars.list[10]}}",
        "run_integration": "{{run.integration}}",
        "run_depth": "{{run.depth}}",
        "run_attempt": "{{run.attempt}}",
        "run_version": "{{run.version}}",
        "run_parent": "{{run.parent_id}}",
        "run_same_root": "{{run.id == run.root_id}}",
        "header": '{{input.headers["x-request-id"] | default:"none"}}',
    }, {"list": ["a", "b", "c"], "i": 2, "o": {"a.b": 1, "c": {"d": [{"e": "E"}]}}})
    assert out == {
        "idx": "b", "neg_idx": "c", "quoted": 1, "dyn": "c", "deep": "E", "missing": None,
        "oob": None, "run_integration": "tpl/x", "run_depth": 0, "run_attempt": 1,
        "run_version": 1, "run_parent": None, "run_same_root": True, "header": "none",
    }


def test_run_id_root(braid):
    braid.publish(integration("tpl/run", [set_task("t", {"id": "{{run.id}}",
                                                         "root": "{{run.root_id}}"})]))
    rec = braid.run_json("tpl/run", {})
    assert rec["output"]["id"] == rec["id"] == rec["output"]["root"]


def test_filters(braid):
    out = render(braid, {
        "json": "{{vars.o | json}}",
        "json_str": "{{vars.s | json}}",
        "url": "{{'a b&c=d/é' | urlencode}}",
        "b64": "{{vars.user + ':' + vars.pass | base64}}",
        "b64url": "{{'?>?' | base64url}}",
        "b64_std": "{{'?>?' | base64}}",
        "upper": "{{vars.s | upper}}",
        "lower": "{{'MiXed' | lower}}",
        "len_s": "{{'héllo' | length}}",
        "len_a": "{{vars.list | length}}",
        "len_o": "{{vars.o | length}}",
        "dflt": "{{vars.missing | default:'x'}}",
        "dflt_num": "{{vars.missing | default:0}}",
        "dflt_obj": '{{vars.missing | default:{"a":[1]}}}',
        "dflt_kept": "{{vars.s | default:'x'}}",
        "dflt_false": "{{false | default:1}}",
        "chain": "{{vars.missing | default:'a' | upper}}",
        "in_text": "?q={{vars.q | urlencode}}&n={{vars.list | length}}",
    }, {"o": {"k": "v", "n": [1, 2.5]}, "s": "hi", "user": "Aladdin", "pass": "open sesame",
        "list": [1, 2, 3], "q": "x y"})
    assert out == {
        "json": '{"k":"v","n":[1,2.5]}',
        "json_str": '"hi"',
        "url": "a%20b%26c%3Dd%2F%C3%A9",
        "b64": "QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "b64url": "Pz4_",
        "b64_std": "Pz4/",
        "upper": "HI",
        "lower": "mixed",
        "len_s": 5,
        "len_a": 3,
        "len_o": 2,
        "dflt": "x",
        "dflt_num": 0,
        "dflt_obj": {"a": [1]},
        "dflt_kept": "hi",
        "dflt_false": False,
        "chain": "A",
        "in_text": "?q=x%20y&n=3",
    }


def test_escaped_braces_are_literal(braid):
    out = render(braid, {"lit": "\\{{vars.a}} is {{vars.a}}", "only": "\\{{"}, {"a": 1})
    assert out == {"lit": "{{vars.a}} is 1", "only": "{{"}


def test_templates_in_nested_values(braid):
    out = render(braid, {"doc": {"list": ["{{vars.a}}", "x{{vars.a}}", 3, None],
                                 "k": {"deep": "{{vars.a > 0}}"}}}, {"a": 2})
    assert out == {"doc": {"list": [2, "x2", 3, None], "k": {"deep": True}}}


def expression_failure(braid, expr, payload):
    braid.publish(integration("tpl/err", [set_task("calc", {"r": expr}),
                                          set_task("after", {"reached": True})]))
    rec = braid.run_json("tpl/err", payload)
    assert rec["status"] == "failed"
    err = rec["error"]
    assert err["code"] == "expression_error"
    assert err["task"] == "calc"
    assert err["run_id"] == rec["id"]
    return err


def test_expression_error_on_type_mismatch(braid):
    err = expression_failure(braid, "{{vars.a + 1}}", {"a": "x"})
    assert "vars.a + 1" in err["message"]
    assert "string" in err["message"]


def test_expression_error_on_division_by_zero(braid):
    err = expression_failure(braid, "{{vars.n / vars.z}}", {"n": 5, "z": 0})
    assert "division by zero" in err["message"]
    err = expression_failure(braid, "{{vars.n % 0}}", {"n": 5})
    assert "division by zero" in err["message"]


def test_expression_error_on_filter_type(braid):
    err = expression_failure(braid, "{{vars.n | upper}}", {"n": 5})
    assert "upper" in err["message"]


def test_expression_error_routed_by_cases(braid):
    braid.publish(integration("tpl/route", [
        set_task("calc", {"r": "{{1 / vars.z}}"}, cases={"expression_error": "handle"}),
        set_task("handle", {"handled": "{{tasks.calc.error.code}}"}),
    ]))
    rec = braid.run_json("tpl/route", {"z": 0})
    assert rec["status"] == "succeeded"
    assert rec["output"]["handled"] == "expression_error"
