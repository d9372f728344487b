//! Executor: walks a parsed tree over a value, writing text.
//!
//! Contract: output is built in memory and bounded by
//! [`Options::max_output`](crate::Options); nesting of template calls and
//! control bodies is bounded by `max_depth`, and the number of evaluation
//! steps by `max_steps`, so a hostile template ends in an error, never a
//! stack overflow or an endless run. Errors carry the template name and the
//! line:col of the node that failed.

use crate::funcs::{call_builtin, html_escape, print_value, ArgCount, FuncError};
use crate::parse::{Arg, ArgKind, Branch, Cmd, Node, Pipe, Tree};
use crate::value::Value;
use crate::{line_col, Error, ExecError, Template};

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, Error>;

pub(crate) struct Exec<'a> {
    tmpl: &'a Template,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    steps: u64,
}

/// Runs `tree` with `data` as dot and `$`.
pub(crate) fn execute(tmpl: &Template, tree: &Tree, data: &Value) -> R<String> {
    let mut ex = Exec {
        tmpl,
        out: String::new(),
        vars: vec![("$".into(), data.clone())],
        depth: 0,
        steps: 0,
    };
    ex.list(tree, &tree.root, data)?;
    Ok(ex.out)
}

impl Exec<'_> {
    fn err(
        &self,
        tree: &Tree,
        pos: usize,
        end: usize,
        msg: String,
        source: Option<FuncError>,
    ) -> Error {
        let (line, col) = line_col(&tree.src, pos);
        let context = tree
            .src
            .get(pos..end.max(pos))
            .unwrap_or("")
            .trim()
            .to_string();
        Error::Exec(Box::new(ExecError {
            name: tree.parse_name.clone(),
            template: tree.name.clone(),
            line,
            col,
            context,
            msg,
            source,
        }))
    }

    fn step(&mut self, tree: &Tree) -> R<()> {
        self.steps += 1;
        if self.steps > self.tmpl.options.max_steps {
            return Err(Error::StepLimit {
                name: tree.name.clone(),
                limit: self.tmpl.options.max_steps,
            });
        }
        Ok(())
    }

    fn write(&mut self, tree: &Tree, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.tmpl.options.max_output {
            return Err(Error::OutputLimit {
                name: tree.name.clone(),
                limit: self.tmpl.options.max_output,
            });
        }
        self.out.push_str(s);
        Ok(())
    }

    fn enter(&mut self, tree: &Tree, pos: usize, end: usize) -> R<()> {
        self.depth += 1;
        if self.depth > self.tmpl.options.max_depth {
            return Err(self.err(
                tree,
                pos,
                end,
                format!(
                    "exceeded maximum template depth ({})",
                    self.tmpl.options.max_depth
                ),
                None,
            ));
        }
        Ok(())
    }

    fn list(&mut self, tree: &Tree, nodes: &[Node], dot: &Value) -> R<Flow> {
        for n in nodes {
            match self.node(tree, n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    /// A body in a nested variable scope.
    fn body(&mut self, tree: &Tree, pipe: &Pipe, nodes: &[Node], dot: &Value) -> R<Flow> {
        self.enter(tree, pipe.pos, pipe.end)?;
        let r = self.list(tree, nodes, dot);
        self.depth -= 1;
        r
    }

    fn node(&mut self, tree: &Tree, n: &Node, dot: &Value) -> R<Flow> {
        self.step(tree)?;
        match n {
            Node::Text(s) => self.write(tree, s)?,
            Node::Action(p) => {
                let v = self.pipe(tree, p, dot, true)?;
                if p.decl.is_empty() {
                    let s = print_value(&v);
                    if self.tmpl.options.escape_html {
                        self.write(tree, &html_escape(&s))?;
                    } else {
                        self.write(tree, &s)?;
                    }
                }
            }
            Node::If(b) | Node::With(b) => {
                let mark = self.vars.len();
                let v = self.pipe(tree, &b.pipe, dot, true)?;
                let with = matches!(n, Node::With(_));
                let flow = if v.truthy() {
                    self.body(tree, &b.pipe, &b.list, if with { &v } else { dot })?
                } else if let Some(e) = &b.else_list {
                    self.body(tree, &b.pipe, e, dot)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(b) => {
                let mark = self.vars.len();
                let r = self.range(tree, b, dot, mark);
                self.vars.truncate(mark);
                r?;
            }
            Node::Template {
                pos,
                end,
                name,
                pipe,
            } => {
                let Some(called) = self.tmpl.trees.get(name).cloned() else {
                    return Err(self.err(
                        tree,
                        *pos,
                        *end,
                        format!("template {name:?} not defined"),
                        None,
                    ));
                };
                let v = match pipe {
                    Some(p) => self.pipe(tree, p, dot, false)?,
                    None => Value::Nil,
                };
                self.enter(tree, *pos, *end)?;
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), v.clone())]);
                let r = self.list(&called, &called.root, &v);
                self.vars = saved;
                self.depth -= 1;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, tree: &Tree, b: &Branch, dot: &Value, mark: usize) -> R<()> {
        let v = self.pipe(tree, &b.pipe, dot, false)?.plain();
        let iter = |ex: &mut Self, key: Value, elem: Value| -> R<bool> {
            ex.step(tree)?;
            ex.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [v] => ex.vars.push((v.clone(), elem.clone())),
                [k, v] => {
                    ex.vars.push((k.clone(), key));
                    ex.vars.push((v.clone(), elem.clone()));
                }
                _ => {}
            }
            Ok(!matches!(
                ex.body(tree, &b.pipe, &b.list, &elem)?,
                Flow::Break
            ))
        };
        let mut any = false;
        match &v {
            Value::List(l) => {
                for (i, e) in l.iter().enumerate() {
                    any = true;
                    if !iter(self, Value::Int(i as i64), e.clone())? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, e) in m.iter() {
                    any = true;
                    if !iter(self, Value::String(k.clone()), e.clone())? {
                        break;
                    }
                }
            }
            Value::StrMap(m) => {
                for (k, e) in m.iter() {
                    any = true;
                    if !iter(self, Value::String(k.clone()), Value::String(e.clone()))? {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.err(
                        tree,
                        b.pipe.pos,
                        b.pipe.end,
                        format!("can't use {n} to iterate over more than one variable"),
                        None,
                    ));
                }
                for i in 0..*n {
                    any = true;
                    if !iter(self, Value::Int(i), Value::Int(i))? {
                        break;
                    }
                }
            }
            Value::Nil => {}
            v => {
                return Err(self.err(
                    tree,
                    b.pipe.pos,
                    b.pipe.end,
                    format!("range can't iterate over {}", print_value(v)),
                    None,
                ))
            }
        }
        if !any {
            if let Some(e) = &b.else_list {
                self.vars.truncate(mark);
                self.body(tree, &b.pipe, e, dot)?;
            }
        }
        Ok(())
    }

    /// Evaluates a pipeline; with `bind`, declares or assigns its variables.
    fn pipe(&mut self, tree: &Tree, p: &Pipe, dot: &Value, bind: bool) -> R<Value> {
        let mut v: Option<Value> = None;
        for c in &p.cmds {
            self.step(tree)?;
            let first = &c.args[0];
            v = Some(match &first.kind {
                ArgKind::Ident(name) => {
                    self.call(tree, c.pos, c.end, name, &c.args[1..], dot, v)?
                }
                kind => {
                    if c.args.len() > 1 || v.is_some() {
                        if let Some(r) = self.method(tree, c, dot, v.take())? {
                            v = Some(r);
                            continue;
                        }
                        let what = tree.src.get(first.pos..first.end).unwrap_or("").to_string();
                        return Err(self.err(
                            tree,
                            first.pos,
                            first.end,
                            format!("can't give argument to non-function {what}"),
                            None,
                        ));
                    }
                    if matches!(kind, ArgKind::Nil) {
                        return Err(self.err(
                            tree,
                            first.pos,
                            first.end,
                            "nil is not a command".into(),
                            None,
                        ));
                    }
                    self.arg(tree, first, dot)?
                }
            });
        }
        let v = v.unwrap_or_default();
        if bind {
            for name in &p.decl {
                if p.assign {
                    if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        slot.1 = v.clone();
                    }
                } else {
                    self.vars.push((name.clone(), v.clone()));
                }
            }
        }
        Ok(v)
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        tree: &Tree,
        pos: usize,
        end: usize,
        name: &str,
        args: &[Arg],
        dot: &Value,
        last: Option<Value>,
    ) -> R<Value> {
        let custom = self.tmpl.funcs.get(name).cloned();
        if custom.is_none() && (name == "and" || name == "or") {
            let n = args.len() + usize::from(last.is_some());
            if n == 0 {
                return Err(self.err(
                    tree,
                    pos,
                    end,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                    None,
                ));
            }
            let mut v = Value::Nil;
            for a in args {
                v = self.arg(tree, a, dot)?;
                if v.truthy() == (name == "or") {
                    return Ok(v);
                }
            }
            return Ok(last.unwrap_or(v));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(tree, a, dot)?);
        }
        vals.extend(last);
        let r = match &custom {
            Some(f) => f(&vals),
            None => match call_builtin(name, &vals) {
                Some(r) => r,
                None => {
                    return Err(self.err(
                        tree,
                        pos,
                        end,
                        format!("function {name:?} not defined"),
                        None,
                    ))
                }
            },
        };
        r.map_err(|e| {
            if custom.is_none() && e.downcast_ref::<ArgCount>().is_some() {
                self.err(tree, pos, end, e.to_string(), Some(e))
            } else {
                self.err(
                    tree,
                    pos,
                    end,
                    format!("error calling {name}: {e}"),
                    Some(e),
                )
            }
        })
    }

    /// `.A.M x y` where `.A` is a [`HostValue`](crate::HostValue) with
    /// method `M`; `None` when the command is not such a call.
    fn method(
        &mut self,
        tree: &Tree,
        c: &Cmd,
        dot: &Value,
        last: Option<Value>,
    ) -> R<Option<Value>> {
        let first = &c.args[0];
        let (recv, names) = match &first.kind {
            ArgKind::Field(names) if !names.is_empty() => (dot.clone(), names),
            ArgKind::Var(name, names) if !names.is_empty() => {
                let Some(v) = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                else {
                    return Ok(None);
                };
                (v, names)
            }
            ArgKind::Chain(base, names) if !names.is_empty() => (self.arg(tree, base, dot)?, names),
            _ => return Ok(None),
        };
        let Some((method, path)) = names.split_last() else {
            return Ok(None);
        };
        let recv = self.fields(tree, first, recv, path)?;
        let Value::Host(h) = &recv else {
            return Ok(None);
        };
        let mut vals = Vec::with_capacity(c.args.len());
        for a in &c.args[1..] {
            vals.push(self.arg(tree, a, dot)?);
        }
        vals.extend(last);
        match h.method(method, &vals) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => Err(self.err(
                tree,
                c.pos,
                c.end,
                format!("error calling {method}: {e}"),
                Some(e),
            )),
        }
    }

    fn arg(&mut self, tree: &Tree, a: &Arg, dot: &Value) -> R<Value> {
        self.step(tree)?;
        Ok(match &a.kind {
            ArgKind::Dot => dot.clone(),
            ArgKind::Nil => Value::Nil,
            ArgKind::Bool(b) => Value::Bool(*b),
            ArgKind::Int(i) => Value::Int(*i),
            ArgKind::Float(f) => Value::Float(*f),
            ArgKind::Str(s) => Value::String(s.clone()),
            ArgKind::Field(names) => self.fields(tree, a, dot.clone(), names)?,
            ArgKind::Var(name, names) => {
                let Some(v) = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                else {
                    return Err(self.err(
                        tree,
                        a.pos,
                        a.end,
                        format!("undefined variable: {name}"),
                        None,
                    ));
                };
                self.fields(tree, a, v, names)?
            }
            ArgKind::Ident(name) => self.call(tree, a.pos, a.end, name, &[], dot, None)?,
            ArgKind::Pipe(p) => self.pipe(tree, p, dot, false)?,
            ArgKind::Chain(base, names) => {
                let v = self.arg(tree, base, dot)?;
                self.fields(tree, a, v, names)?
            }
        })
    }

    fn fields(&self, tree: &Tree, a: &Arg, mut v: Value, names: &[String]) -> R<Value> {
        for name in names {
            v = match &v {
                Value::Map(m) => m.get(name).cloned().unwrap_or_default(),
                Value::StrMap(m) => Value::String(m.get(name).cloned().unwrap_or_default()),
                Value::Host(h) => match h.field(name) {
                    Some(f) => f,
                    None => {
                        return Err(self.err(
                            tree,
                            a.pos,
                            a.end,
                            format!("can't evaluate field {name} in type {}", h.type_name()),
                            None,
                        ))
                    }
                },
                Value::Nil => {
                    return Err(self.err(
                        tree,
                        a.pos,
                        a.end,
                        format!("nil pointer evaluating interface {{}}.{name}"),
                        None,
                    ))
                }
                other => {
                    return Err(self.err(
                        tree,
                        a.pos,
                        a.end,
                        format!("can't evaluate field {name} in type {}", other.type_name()),
                        None,
                    ))
                }
            };
        }
        Ok(v)
    }
}
