import type { Context, Visitor } from 'istanbul-lib-report'
import type { LeakNode, LeakTree } from './leak-tree.js'

/**
 * A report over the leak tree: a partial istanbul visitor, completed and driven by istanbul's
 * context. Our counterpart of istanbul's ReportBase, whose execute() would ask the context for a
 * coverage tree; this one walks the leak tree it is given.
 */
export abstract class LeakReportBase implements Partial<Visitor<LeakNode>> {
  onStart?(root: LeakNode, context: Context): void
  onSummary?(node: LeakNode, context: Context): void
  onDetail?(node: LeakNode, context: Context): void
  onSummaryEnd?(node: LeakNode, context: Context): void
  onEnd?(root: LeakNode, context: Context): void

  execute(context: Context, tree: LeakTree): void {
    tree.visit(context.getVisitor<LeakNode>(this), context)
  }
}
