"""The words of the notes a student reads (``detail="short"``), in English and Chinese.

One table, ``PROSE[key] = {"en": ..., "zh": ...}``; :func:`prose` picks one language's
column. Every piece is TeX already; ``{}`` fields are filled by ``teaching.py``. The words
of the full trace (``detail="full"``) and the rule names are in ``words.py``. The Chinese is
written as a Chinese student writes these notes: full-width punctuation beside Chinese
characters, 用到它的量 for the quantities that read a quantity, no full stop after a run-in
heading.
"""

from __future__ import annotations

from chainrule.codegen.backends.latex.words import LANGUAGES

PROSE: dict[str, dict[str, str]] = {
    "book_intro": {
        "en": "Each part derives the backward pass of one network from its forward equations, "
              "and ends with a one-page summary in index and matrix form.",
        "zh": "每一部分从一个网络的前向方程出发推导其反向传播，最后用一页小结列出指标形式与"
              "矩阵形式。"},
    "intro": {
        "en": "These notes derive the backward pass{description} by reverse accumulation in "
              "index notation, in the notation of Graves, \\emph{{Supervised Sequence "
              "Labelling with Recurrent Neural Networks}}, chapters~3 and~4. Every equation is "
              "for one example; over a data set the losses add up. Sums run over the whole "
              "range of their index, and $\\delta_{{a b}}$ is the Kronecker delta, $1$ if "
              "$a = b$ and $0$ otherwise.",
        "zh": "本笔记用指标记号和反向累积推导{description}的反向传播，记号沿用 Graves"
              "《Supervised Sequence Labelling with Recurrent Neural Networks》第~3、4~章。"
              "每个方程都针对单个样本，整个数据集的损失是各样本损失之和。求和遍历指标的全部"
              "取值，$\\delta_{{a b}}$ 是克罗内克 $\\delta$：$a = b$ 时为 $1$，否则为 $0$。"},
    "description": {"en": " of the {what}", "zh": "{what}"},
    "model": {"en": "The model", "zh": "模型"},
    "indices_time": {"en": "Time runs over ${time}$ and the unit indices over {units}.",
                     "zh": "时间取 ${time}$，各单元指标的取值为 {units}。"},
    "indices_plain": {"en": "The unit indices run over {units}.",
                      "zh": "各单元指标的取值为 {units}。"},
    "symbols_intro": {"en": "The quantities, in the notation of these notes:",
                      "zh": "各个量及其记号："},
    "role_input": {"en": "input", "zh": "输入"},
    "role_target": {"en": "target", "zh": "目标"},
    "role_parameter": {"en": "parameters", "zh": "参数"},
    "role_state": {"en": "initial state", "zh": "初始状态"},
    "role_intermediate": {"en": "computed", "zh": "中间量"},
    "functions": {"en": "{pieces}.", "zh": "{pieces}。"},
    "function_sep": {"en": "; ", "zh": "；"},
    "function_logistic": {
        "en": "$\\sigma(x) = 1/(1 + e^{{-x}})$ is the logistic function, and for "
              "$b = \\sigma(a)$, $\\sigma'(a) = b(1 - b)$ (Graves' $f'(a)$)",
        "zh": "$\\sigma(x) = 1/(1 + e^{{-x}})$ 是 logistic 函数，若 $b = \\sigma(a)$，则 "
              "$\\sigma'(a) = b(1 - b)$（即 Graves 的 $f'(a)$）"},
    "function_tanh": {
        "en": "for $b = \\tanh(a)$, $\\tanh'(a) = 1 - b^{{2}}$ (Graves' $\\theta'(a)$)",
        "zh": "若 $b = \\tanh(a)$，则 $\\tanh'(a) = 1 - b^{{2}}$（即 Graves 的 $\\theta'(a)$）"},
    "functions_graves": {
        "en": "As Graves does, these notes name the squashing functions: {gates}{applied}. "
              "{means}.",
        "zh": "与 Graves 一样，本笔记给各压缩函数命名：{gates}{applied}。{means}。"},
    "letter_gates": {"en": "$f$ the gates' function, ", "zh": "$f$ 为各门的函数，"},
    "letter_applied": {"en": "${letter}$ the one applied to ${arg}$",
                       "zh": "${letter}$ 为作用于 ${arg}$ 的函数"},
    "letters_gates": {
        "en": "Here $f = \\sigma$, the logistic function $\\sigma(x) = 1/(1 + e^{{-x}})$, and "
              "for a gate $b = f(a)$, $f'(a) = b(1 - b)$",
        "zh": "这里 $f = \\sigma$，即 logistic 函数 $\\sigma(x) = 1/(1 + e^{{-x}})$；"
              "对门 $b = f(a)$ 有 $f'(a) = b(1 - b)$"},
    "letters_tanh": {"en": "${letters} = \\tanh$, so ${primes} = 1 - \\tanh^{{2}}(x)$",
                     "zh": "${letters} = \\tanh$，故 ${primes} = 1 - \\tanh^{{2}}(x)$"},
    "letters_logistic": {
        "en": "${letters} = \\sigma$, so ${primes} = \\sigma(x)(1 - \\sigma(x))$",
        "zh": "${letters} = \\sigma$，故 ${primes} = \\sigma(x)(1 - \\sigma(x))$"},
    "graph_refer": {"en": "Figure~\\ref{{{label}}} shows how the quantities depend on each other.",
                    "zh": "各量之间的依赖关系见图~\\ref{{{label}}}。"},
    "graph_caption": {
        "en": "The computation graph, drawn from the equations: an arrow runs from each "
              "quantity to those whose equations read it, labelled with the parameters that "
              "weight it; $\\times$ is a product{recurrent}.",
        "zh": "由方程画出的计算图：箭头从每个量指向用到它的量，箭头上标注加权的参数；"
              "$\\times$ 表示乘积{recurrent}。"},
    "graph_recurrent": {
        "en": "; dashed arrows come from or go to another step, dotted ones carry adjoints back",
        "zh": "；虚线箭头来自或通向另一时间步，点线箭头把误差项传回"},
    "forward_pass": {"en": "Forward pass", "zh": "前向传播"},
    "each_step": {"en": "For $t = 1, \\dots, T$ in turn, starting from {states} (given; zero "
                        "unless passed):",
                  "zh": "对 $t = 1, \\dots, T$ 依次计算，初始值 {states} 给定（未给出时为零）："},
    "each_step_down": {"en": "For $t = T, \\dots, 1$ in turn, starting from {states} (given; "
                             "zero unless passed):",
                       "zh": "对 $t = T, \\dots, 1$ 依次计算，初始值 {states} 给定"
                             "（未给出时为零）："},
    "each_step_both": {
        "en": "The layers that read step $t-1$ run $t = 1, \\dots, T$ from {up}, those that read "
              "step $t+1$ run $t = T, \\dots, 1$ from {down} (given; zero unless passed):",
        "zh": "用到第 $t-1$ 步的层按 $t = 1, \\dots, T$ 从 {up} 算起，用到第 $t+1$ 步的层按 "
              "$t = T, \\dots, 1$ 从 {down} 算起（初始值给定，未给出时为零）："},
    "each_step_plain": {"en": "For $t = 1, \\dots, T$ in turn:",
                        "zh": "对 $t = 1, \\dots, T$ 依次计算："},
    "in_order": {"en": "In this order:", "zh": "按以下顺序计算："},
    "the_loss": {"en": "The loss", "zh": "损失函数"},
    "loss_plain": {"en": "The loss is", "zh": "损失为"},
    "loss_likelihood": {
        "en": "The outputs ${y}$ are the probabilities the network gives the classes; the loss "
              "is the negative log-probability of the targets, $L = -\\ln p(z \\mid x)$, which "
              "for a one-hot target $z$ (one class, $z_{{k}} = 1$ for it and $0$ else) is",
        "zh": "输出 ${y}$ 是网络给各类别的概率；损失取目标的负对数概率 $L = -\\ln p(z \\mid x)$。"
              "目标 $z$ 为独热向量时（正确类别处 $z_{{k}} = 1$，其余为 $0$），它就是"},
    "backward_pass": {"en": "Backward pass", "zh": "反向传播"},
    "backward_rule": {
        "en": "For every quantity $q$, the chain rule sums over the quantities $c$ whose "
              "equations read $q$, and over all their indices:",
        "zh": "对每个量 $q$，链式法则对所有用到 $q$ 的量 $c$ 及其全部指标求和："},
    "backward_order": {
        "en": "The adjoints are computed in the order {order}{when}.",
        "zh": "各误差项按 {order} 的顺序计算{when}。"},
    "backward_when": {
        "en": ", at each step from $t = T$ down to $t = 1$: a term at $t+1$ was computed in the "
              "previous pass of this backward loop, so it is known when step $t$ needs it",
        "zh": "，时间从 $t = T$ 递减到 $t = 1$：$t+1$ 时刻的项在反向循环的上一轮已经算出，"
              "所以第 $t$ 步用到时它已知"},
    "backward_when_up": {
        "en": ", at each step from $t = 1$ up to $t = T$ (the forward pass runs backwards in "
              "time): a term at $t-1$ was computed in the previous pass of this backward loop, "
              "so it is known when step $t$ needs it",
        "zh": "，时间从 $t = 1$ 递增到 $t = T$（前向传播在时间上倒着进行）：$t-1$ 时刻的项在"
              "反向循环的上一轮已经算出，所以第 $t$ 步用到时它已知"},
    "backward_when_both": {
        "en": ", in two loops: the adjoints that read step $t+1$ from $t = T$ down to $t = 1$, "
              "those of the layers that run backwards in time (they read step $t-1$) from "
              "$t = 1$ up to $t = T$; either way a term at the other step was computed in the "
              "previous pass of its loop, so it is known when step $t$ needs it",
        "zh": "，分两个循环：用到第 $t+1$ 步的误差项从 $t = T$ 递减到 $t = 1$，在时间上倒着"
              "运行的层（它们用到第 $t-1$ 步）从 $t = 1$ 递增到 $t = T$；无论哪种，另一步的项"
              "都在所在循环的上一轮已经算出，所以第 $t$ 步用到时它已知"},
    "boundary": {"en": "\\emph{{Boundary condition.}} {cases}",
                 "zh": "\\emph{{边界条件}}\\quad {cases}"},
    "boundary_case": {
        "en": "At $t = {last}$ there is no step ${beyond}$: the terms that read {reads} vanish, "
              "that is {conds} (Graves' boundary condition).",
        "zh": "$t = {last}$ 时没有第 ${beyond}$ 步，含 {reads} 的项为零，即 {conds}"
              "（Graves 的边界条件）。"},
    "boundary_case_behind": {
        "en": "In the layers that run backwards in time, at $t = {last}$ there is no step "
              "${beyond}$: the terms that read {reads} vanish, that is {conds}.",
        "zh": "在时间上倒着运行的层中，$t = {last}$ 时没有第 ${beyond}$ 步，含 {reads} 的项"
              "为零，即 {conds}。"},
    "conditioned": {
        "en": "The term ${term}$ of ${lhs}$ is there only where {when}: a bracket is one where "
              "its condition holds and zero elsewhere.",
        "zh": "${lhs}$ 中的项 ${term}$ 只在 {when} 时出现：方括号在条件成立时为一，否则为零。"},
    "readers": {"en": "It is read by {readers}.", "zh": "用到它的量：{readers}。"},
    "by": {"en": "by {refs}", "zh": "由 {refs}"},
    "chain_rule": {"en": "chain rule", "zh": "链式法则"},
    "quotient_rule": {"en": "quotient rule", "zh": "商的求导法则"},
    "deltas": {"en": "sum out $\\delta$", "zh": "消去 $\\delta$"},
    "lemma": {"en": "where", "zh": "其中"},
    "same_way": {"en": "In the same way as {ref}:", "zh": "与 {ref} 同理："},
    "sum_to_one": {
        "en": "The last step needs only $\\sum_{{k}} z_{{k}} = 1$: any targets that sum to one "
              "(a one-hot vector or a distribution) give ${result}$.",
        "zh": "最后一步只用到 $\\sum_{{k}} z_{{k}} = 1$：任何和为一的目标（独热向量或概率分布）"
              "都给出 ${result}$。"},
    "carousel": {
        "en": "The term ${term}$ carries the error of step $t+1$ back to step $t$ multiplied "
              "only by ${factor}$, not by a derivative: where ${factor}$ is near one, the error "
              "passes through many steps unchanged (Graves' constant error carousel).",
        "zh": "项 ${term}$ 把第 $t+1$ 步的误差传回第 $t$ 步，只乘以 ${factor}$，不乘导数："
              "${factor}$ 接近一时，误差可以几乎不变地穿过许多步（Graves 所说的恒定误差传送带）。"},
    "parameter_gradients": {"en": "Parameter gradients", "zh": "参数梯度"},
    "gradients_general": {
        "en": "A parameter enters only the equation it belongs to, at every step. For "
              "${example}$, by {ref}:",
        "zh": "参数只出现在它所属的方程中，且每一步都出现。以 ${example}$ 为例，由 {ref}："},
    "gradients_table": {
        "en": "Every parameter gradient follows in the same way; Section~\\ref{{{label}}} lists "
              "them all, with their matrix forms.",
        "zh": "其余参数梯度同理可得，连同矩阵形式列于第~\\ref{{{label}}}~节。"},
    "states_gradients": {
        "en": "An initial state is read only where its recurrence starts ({where}):",
        "zh": "初始状态只在其递推开始的那一步被用到（{where}）："},
    "read_at": {"en": "${state}$ at ${at}$", "zh": "${state}$ 在 ${at}$"},
    "example_head": {"en": "A worked example", "zh": "算例"},
    "example": {
        "en": "At tiny sizes, {sizes}, parameters and input drawn with seed {seed} and one "
              "target class per step, the generated NumPy code gives $L = {loss}$ and the "
              "gradient on the left; central differences (step $10^{{{step}}}$) give the right "
              "one:",
        "zh": "取很小的尺寸 {sizes}，参数与输入用种子 {seed} 随机生成，每步一个目标类别，"
              "生成的 NumPy 代码算得 $L = {loss}$ 及左边的梯度；中心差分（步长 $10^{{{step}}}$）"
              "给出右边的梯度："},
    "example_passed": {
        "en": "Over all {entries} gradient entries the two differ by less than "
              "$10^{{{bound}}}$ (computed when these notes were written).",
        "zh": "在全部 {entries} 个梯度分量上两者之差都小于 $10^{{{bound}}}$（生成本笔记时算出）。"},
    "example_failed": {
        "en": "\\textbf{{The check failed}}: over the {entries} entries of the parameter "
              "gradients the two differ by up to ${worst}$.",
        "zh": "\\textbf{{检验未通过}}：在参数梯度的 {entries} 个分量上，两者之差最大为 "
              "${worst}$。"},
    "example_numerical": {"en": "central differences", "zh": "中心差分"},
    "loop_head": {"en": "The backward loop", "zh": "反向循环"},
    "loop_init": {"en": "set", "zh": "置"},
    "loop_for": {"en": "for ${range}$:", "zh": "对 ${range}$："},
    "loop_compute": {"en": "compute", "zh": "计算"},
    "loop_after": {"en": "then sum the parameter gradients over $t$",
                   "zh": "然后对 $t$ 求和得到参数梯度"},
    "loop_after_plain": {"en": "then the parameter gradients", "zh": "然后计算参数梯度"},
    "col_gradient": {"en": "index form", "zh": "指标形式"},
    "col_matrix": {"en": "matrix form", "zh": "矩阵形式"},
    "summary": {"en": "Summary", "zh": "小结"},
    "summary_intro": {
        "en": "Each index form has its matrix and vector form on its right: vectors drop the "
              "unit index, $\\odot$ is the elementwise product, functions act elementwise, and "
              "a weight matrix $W$ has the rows and columns of its indices ($w_{{hk}}$ is row "
              "$h$, column $k$).",
        "zh": "每个指标形式的右边是它的矩阵与向量形式：向量省去单元指标，$\\odot$ 是逐元素乘积，"
              "函数逐元素作用，权重矩阵 $W$ 的行和列就是其两个指标（$w_{{hk}}$ 在第 $h$ 行"
              "第 $k$ 列）。"},
    "summary_forward": {"en": "Forward, $t = 1, \\dots, T$", "zh": "前向，$t = 1, \\dots, T$"},
    "summary_forward_plain": {"en": "Forward", "zh": "前向"},
    "summary_mirror": {
        "en": "The layer that reads $t+1$ is left out below: its rows are those of the layer "
              "that reads $t-1$ with each symbol replaced by its mirror image ({pairs}; the "
              "weights, initial states and adjoints alike) and each $t \\pm k$ by "
              "$t \\mp k$: it runs the other way in time, its adjoints zero at "
              "$t = {beyond}$.",
        "zh": "下面略去用到 $t+1$ 的层：它的各行就是用到 $t-1$ 的层的各行，把每个符号换成"
              "它的镜像（{pairs}；权重、初始状态和误差项亦然），把每个 $t \\pm k$ 换成 "
              "$t \\mp k$：它在时间上反向运行，其误差项在 $t = {beyond}$ 为零。"},
    "summary_forward_down": {"en": "Forward, $t = T, \\dots, 1$",
                             "zh": "前向，$t = T, \\dots, 1$"},
    "summary_forward_both": {
        "en": "Forward, $t = 1, \\dots, T$; the layers that read $t+1$: $t = T, \\dots, 1$",
        "zh": "前向，$t = 1, \\dots, T$；用到 $t+1$ 的层：$t = T, \\dots, 1$"},
    "summary_backward": {"en": "Backward, ${range}$, with {conds}",
                         "zh": "反向，${range}$，{conds}"},
    "summary_backward_free": {"en": "Backward, ${range}$", "zh": "反向，${range}$"},
    "summary_backward_both": {"en": "Backward, in the two loops below, with {conds}",
                              "zh": "反向，分下面两个循环，{conds}"},
    "summary_backward_plain": {"en": "Backward", "zh": "反向"},
    "summary_gradients": {"en": "Gradients", "zh": "梯度"},
    "appendix": {"en": "Symbols and kernel names", "zh": "符号与代码中的名称"},
    "appendix_intro": {
        "en": "The generated NumPy and C kernels name the quantities as follows; their arrays "
              "count units from $0$, and add a batch axis.",
        "zh": "生成的 NumPy 与 C 代码按下表命名各个量；数组的单元下标从 $0$ 开始，并多一个"
              "批量维。"},
    "col_symbol": {"en": "symbol", "zh": "符号"},
    "col_name": {"en": "kernel name", "zh": "代码中的名称"},
    "col_shape": {"en": "shape", "zh": "形状"},
    "verified": {
        "en": "Every step of the derivation was checked numerically (\\texttt{{chainrule "
              "verify}}): both sides at random values, for every index, at {cases} sets of "
              "sizes; over the {count} steps the worst discrepancy is below $10^{{{exponent}}}$.",
        "zh": "推导的每一步都做过数值检验（\\texttt{{chainrule verify}}）：在 {cases} 组尺寸下，"
              "对每个指标用随机值计算等式两边，{count} 步中最大的偏差小于 $10^{{{exponent}}}$。"},
    "verify_failed": {
        "en": "\\textbf{{The numerical check of the steps failed}}: {failed} of the {count} "
              "steps disagree with their rewrite; do not trust this derivation.",
        "zh": "\\textbf{{各步的数值检验未通过}}：{count} 步中有 {failed} 步与其改写不符，"
              "请勿采信此推导。"},
    "and": {"en": " and ", "zh": "和"},
    "sentence_sep": {"en": " ", "zh": ""},
    "list_sep": {"en": ", ", "zh": "、"},
    "ref_sep": {"en": ", ", "zh": "、"},
}


def prose(lang: str) -> dict[str, str]:
    """The column of ``PROSE`` for ``lang``."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; the notes are written in "
                         f"{', '.join(LANGUAGES)}")
    return {key: column[lang] for key, column in PROSE.items()}


__all__ = ["PROSE", "prose"]
