"""The evaluation-weights swap that ScheduleFree optimizers and SWA share.

Both keep a second set of weights in optimizer slots (Schedule-Free's z sequence, SWA's running average) and put
evaluation weights into the model's variables for evaluation, prediction and saving, remembering in an optimizer
variable (`_eval_mode`, saved with the model) which set the variables hold. `tfopt.callbacks.ScheduleFreeEval`
and `SWAEval` call the swaps at the right moments of `fit`.
"""

from keras import ops


class EvalSwapMixin:
    """Mixin for an optimizer whose built state has `_eval_mode` (an int variable) and one slot per trained
    variable. Subclasses implement `_eval_slots()` (those slots, in the optimizer's variable order) and
    `_exchange(variable, slot, to_eval)` (puts one variable's other weights in place), and may override
    `_has_eval_weights()` (False: a swap to eval does nothing yet) and `_swap_moves_weights()` (False: the two
    sets are still equal, so only the mode changes)."""

    def _has_eval_weights(self):
        return True

    def _swap_moves_weights(self):
        return True

    def _swap_pairs(self, variables):
        slots = self._eval_slots()
        pairs = []
        for variable in variables:
            try:
                pairs.append((variable, slots[self._get_variable_index(variable)]))
            except KeyError:
                raise ValueError(
                    f"Argument `variables` must hold only variables this optimizer trains. Received: "
                    f"{variable.path} is not one of them."
                ) from None
        return pairs

    def _swap(self, variables, to_eval):
        if not self.built:
            return
        pairs = self._swap_pairs(variables)
        if self.in_eval_mode == to_eval or (to_eval and not self._has_eval_weights()):
            return
        if self._swap_moves_weights():
            for variable, slot in pairs:
                self._exchange(variable, slot, to_eval)
        self._eval_mode.assign(1 if to_eval else 0)

    @property
    def in_eval_mode(self):
        """True while the trained variables hold the evaluation weights (after `swap_to_eval`)."""
        return self.built and bool(ops.convert_to_numpy(self._eval_mode))
