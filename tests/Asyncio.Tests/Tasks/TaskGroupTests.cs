namespace Asyncio.Tests.Tasks;

using static Asyncio.Tests.Coroutines;

/// <summary>asyncio's <c>TaskGroup</c> (3.11+): waiting, aborting on failure, exception groups, outer cancellation.</summary>
public class TaskGroupTests
{
    static double Now => Aio.GetRunningLoop().Time();

    /// <summary>A child that sleeps until it is cancelled, then fails in its cleanup.</summary>
    internal static async Task FailInCleanup()
    {
        try { await Aio.Sleep(10); }
        finally { throw new FormatException("cleanup failed"); }
    }

    /// <summary>
    /// Runs <paramref name="body"/> in a task cancelled a second later, and returns its log: what the body
    /// logged, the innermost message of an <see cref="ExceptionGroup"/> it threw, then whether the task's next
    /// await was cancelled.
    /// </summary>
    internal static async Task<List<string>> CancelledFromOutside(Func<List<string>, Task> body)
    {
        var log = new List<string>();
        var task = Aio.CreateTask(async () =>
        {
            try { await body(log); }
            catch (ExceptionGroup eg)
            {
                Exception e = eg;
                while (e is ExceptionGroup g) e = Assert.Single(g.Exceptions);
                log.Add(e.Message);
            }
            try { await Aio.Sleep(1); log.Add("slept"); }
            catch (CancelledError) { log.Add("cancelled"); }
        });
        await Aio.Sleep(1);
        task.Cancel();
        await task;
        return log;
    }

    // ---- waiting ----

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_01")]
    public void Run_Children_WaitsForAllOfThem() => AioTest.Run(async () =>
    {
        AioTask<int>? a = null, b = null;
        double t0 = Now;
        await TaskGroup.Run(tg =>
        {
            a = tg.CreateTask(() => After(1, 42));
            b = tg.CreateTask(() => After(3, 11));
            return Task.CompletedTask;
        });
        Assert.Equal(3, Now - t0, 6);
        Assert.Equal(42, a!.Result);
        Assert.Equal(11, b!.Result);
    });

    [Fact]
    public void CreateTask_WithAnArgument_StartsAChildTheGroupWaitsFor() => AioTest.Run(async () =>
    {
        AioTask<int>? a = null;
        AioTask? b = null;
        var seen = new List<int>();
        double t0 = Now;
        await TaskGroup.Run(tg =>
        {
            a = tg.CreateTask(static (int d) => After(d, d * 10), 2);
            b = tg.CreateTask(async (int d) => { await Aio.Sleep(d); seen.Add(d); }, 3);
            tg.CreateTask(static async (int d) => await Aio.Sleep(d), 1);
            tg.CreateTask(static (int d) => After(d, d), 1);
            return Task.CompletedTask;
        });
        Assert.Equal(3, Now - t0, 6);
        Assert.Equal(20, a!.Result);
        Assert.True(b!.IsDone);
        Assert.Equal([3], seen);
    });

    [Fact]
    public void CreateTask_WithAnArgument_GroupFinished_Throws() => AioTest.Run(async () =>
    {
        TaskGroup? group = null;
        await TaskGroup.Run(tg => { group = tg; return Task.CompletedTask; });
        Assert.Throws<InvalidOperationException>(() => { group!.CreateTask(static async (int d) => await Aio.Sleep(d), 1); });
    });

    [Fact]
    public void Run_BodyWithResult_ReturnsItOnceTheChildrenAreDone() => AioTest.Run(async () =>
    {
        AioTask<int>? child = null;
        double t0 = Now;
        string r = await TaskGroup.Run(async tg =>
        {
            child = tg.CreateTask(() => After(2, 1));
            await Aio.Sleep(1);
            return "body";
        });
        Assert.Equal("body", r);
        Assert.True(child!.IsDone);
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: children create tasks in the group")]
    public void CreateTask_FromInsideAChild_GroupWaitsForIt() => AioTest.Run(async () =>
    {
        bool grandchildDone = false;
        double t0 = Now;
        await TaskGroup.Run(tg =>
        {
            _ = tg.CreateTask(async () =>
            {
                await Aio.Sleep(1);
                _ = tg.CreateTask(async () => { await Aio.Sleep(2); grandchildDone = true; });
            });
            return Task.CompletedTask;
        });
        Assert.True(grandchildDone);
        Assert.Equal(3, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_10 (a cancelled child is not an error)")]
    public void Run_ChildCancelled_IsNotAnError() => AioTest.Run(async () =>
    {
        AioTask<int>? sibling = null;
        await TaskGroup.Run(async tg =>
        {
            var victim = tg.CreateTask(() => After(10, 1));
            sibling = tg.CreateTask(() => After(2, 2));
            await Aio.Sleep(1);
            victim.Cancel();
        });
        Assert.Equal(2, sibling!.Result);
    });

    // ---- failures ----

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_02, test_taskgroup_03")]
    public void Run_ChildFails_CancelsTheOtherChildrenAndTheBody() => AioTest.Run(async () =>
    {
        AioTask<int>? slow = null;
        bool bodyCancelled = false;
        double t0 = Now;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            slow = tg.CreateTask(() => After(10, 1));
            _ = tg.CreateTask(() => FailAfter(1, "boom"));
            try { await Aio.Sleep(10); }
            catch (CancelledError) { bodyCancelled = true; throw; }
        }));
        Assert.Equal(1, Now - t0, 6);
        Assert.True(bodyCancelled);
        Assert.True(slow!.IsCancelled);
        var e = Assert.IsType<InvalidOperationException>(Assert.Single(eg.Exceptions));
        Assert.Equal("boom", e.Message);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_06 (every failure is kept)")]
    public void Run_SeveralChildrenFail_OneGroupWithEveryFailure() => AioTest.Run(async () =>
    {
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg =>
        {
            _ = tg.CreateTask(() => FailAfter(1, "first"));
            _ = tg.CreateTask(() => FailAfter(1, "second"));
            _ = tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(10); }
                finally { throw new ArgumentException("while cancelled"); }
            });
            return Task.CompletedTask;
        }));
        Assert.Equal(["first", "second", "while cancelled"], eg.Exceptions.Select(e => e.Message));
        // asyncio's message, without the count that Python's str() adds (which Split and Subgroup pass on).
        Assert.Equal("unhandled errors in a TaskGroup", eg.GroupMessage);
        Assert.Equal("unhandled errors in a TaskGroup", eg.Split<ArgumentException>().Match?.GroupMessage);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_09 (the body's error comes last)")]
    public void Run_BodyFails_ChildrenAreCancelledAndItsErrorIsInTheGroupAfterTheirs() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            child = tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(10); }
                catch (CancelledError) { await Aio.Sleep(1); throw new ArgumentException("child cleanup"); }
            });
            await Aio.Sleep(1);
            throw new InvalidOperationException("body");
        }));
        Assert.Equal(["child cleanup", "body"], eg.Exceptions.Select(e => e.Message));
        Assert.True(child!.IsDone);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_08 (the body swallows its cancellation)")]
    public void Run_BodySwallowsItsCancellation_GroupStillRaisesTheChildFailure() => AioTest.Run(async () =>
    {
        bool bodyWentOn = false;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(() => FailAfter(1, "boom"));
            try { await Aio.Sleep(10); }
            catch (CancelledError) { }
            await Aio.Sleep(1); // the body's cancellation was one error, not a state
            bodyWentOn = true;
        }));
        Assert.True(bodyWentOn);
        Assert.Single(eg.Exceptions);
    });

    [Fact]
    [Trait("asyncio", "taskgroups: __aexit__ aborts only if the group is not aborting already")]
    public void Run_BodyFailsWhileTheGroupAborts_ChildrenAreNotCancelledAgain() => AioTest.Run(async () =>
    {
        AioTask? cleaner = null;
        bool cleanedUp = false;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            cleaner = tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(10); }
                catch (CancelledError) { await Aio.Sleep(1); cleanedUp = true; }
            });
            _ = tg.CreateTask(() => FailAfter(1, "boom"));
            try { await Aio.Sleep(10); }
            catch (CancelledError) { throw new ArgumentException("body"); }
        }));
        Assert.Equal(["boom", "body"], eg.Exceptions.Select(e => e.Message));
        Assert.True(cleanedUp);
        Assert.Equal(1, cleaner!.Cancelling());
        Assert.False(cleaner.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "taskgroups: __aexit__ aborts only if the group is not aborting already")]
    public void Run_CancelledFromOutsideWhileTheGroupAborts_ChildrenAreNotCancelledAgain() => AioTest.Run(async () =>
    {
        AioTask? cleaner = null;
        bool cleanedUp = false;
        var outer = Aio.CreateTask(() => TaskGroup.Run(async tg =>
        {
            cleaner = tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(10); }
                catch (CancelledError) { await Aio.Sleep(2); cleanedUp = true; }
            });
            _ = tg.CreateTask(() => FailAfter(1, "boom"));
            try { await Aio.Sleep(10); }
            catch (CancelledError) { await Aio.Sleep(10); }  // the group's own cancellation, swallowed
        }));
        await Aio.Sleep(1.5);
        outer.Cancel();
        await Assert.ThrowsAsync<ExceptionGroup>(async () => await outer);
        Assert.True(cleanedUp);
        Assert.Equal(1, cleaner!.Cancelling());
    });

    [Fact]
    public void Run_ChildFailsAfterTheBodyEnded_CancelsTheOthers() => AioTest.Run(async () =>
    {
        AioTask<int>? slow = null;
        double t0 = Now;
        await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg =>
        {
            slow = tg.CreateTask(() => After(10, 1));
            _ = tg.CreateTask(() => FailAfter(2, "late"));
            return Task.CompletedTask;
        }));
        Assert.Equal(2, Now - t0, 6);
        Assert.True(slow!.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "taskgroups: the task is not left cancelled after the group aborted its body")]
    public void Run_AbortedGroupCaught_TaskGoesOnUncancelled() => AioTest.Run(async () =>
    {
        var task = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(async tg =>
                {
                    _ = tg.CreateTask(() => FailAfter(1, "boom"));
                    await Aio.Sleep(10);
                });
            }
            catch (ExceptionGroup) { }
            await Aio.Sleep(1); // must not be interrupted
            return Aio.CurrentTask!.Cancelling();
        });
        Assert.Equal(0, await task);
    });

    [Fact]
    public void Run_NestedGroupFails_OuterGroupHoldsTheInnerGroup() => AioTest.Run(async () =>
    {
        AioTask<int>? outerChild = null;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async outer =>
        {
            outerChild = outer.CreateTask(() => After(10, 1));
            await TaskGroup.Run(inner =>
            {
                _ = inner.CreateTask(() => FailAfter(1, "deep"));
                return Task.CompletedTask;
            });
        }));
        var inner = Assert.IsType<ExceptionGroup>(Assert.Single(eg.Exceptions));
        Assert.Equal("deep", Assert.Single(inner.Exceptions).Message);
        Assert.True(outerChild!.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "gh-128550: an eager child that fails at once does not cancel the body before CreateTask returns")]
    public void CreateTask_EagerChildFailsAtOnce_BodyIsCancelledAtItsNextAwait() => AioTest.Run(async () =>
    {
        var log = new List<string>();
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(() => throw new InvalidOperationException("eager"));
            log.Add("created");
            try { await Aio.Sleep(10); }
            catch (CancelledError) { log.Add("cancelled"); throw; }
        }));
        Assert.Equal(["created", "cancelled"], log);
        Assert.Equal("eager", Assert.Single(eg.Exceptions).Message);
    }, new LoopOptions { VirtualTime = true, EagerTasks = true });

    // ---- cancellation from outside ----

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_04, test_cancel_children_on_child_error")]
    public void Run_CancelledFromOutside_CancelsChildrenAndRethrowsOnceTheyAreDone() => AioTest.Run(async () =>
    {
        bool cleanedUp = false;
        AioTask? child = null;
        var task = Aio.CreateTask(() => TaskGroup.Run(async tg =>
        {
            child = tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(10); }
                catch (CancelledError) { await Aio.Sleep(2); cleanedUp = true; throw; }
            });
            await Aio.Sleep(10);
        }));
        await Aio.Sleep(1);
        double t0 = Now;
        task.Cancel("outer");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.Equal("outer", e.CancelMessage);
        Assert.Equal(2, Now - t0, 6);
        Assert.True(cleanedUp);
        Assert.True(child!.IsCancelled);
        Assert.True(task.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: cancelled while waiting for the children in __aexit__")]
    public void Run_CancelledFromOutsideAfterTheBodyEnded_CancelsChildrenAndRethrows() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        var task = Aio.CreateTask(() => TaskGroup.Run(tg =>
        {
            child = tg.CreateTask(() => After(10, 1));
            return Task.CompletedTask;
        }));
        await Aio.Sleep(1);
        task.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.True(child!.IsCancelled);
        Assert.True(task.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "taskgroups: errors win over a cancellation from outside, which is kept for the next await")]
    public void Run_CancelledFromOutsideAndChildFails_ExceptionGroupWinsAndTheCancellationIsKept() => AioTest.Run(async () =>
    {
        var log = await CancelledFromOutside(steps => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(FailInCleanup);
            await Aio.Sleep(10);
        }));
        Assert.Equal(["cleanup failed", "cancelled"], log);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_18 (the body turns the cancellation into an error; the task is re-cancelled)")]
    public void Run_BodyTurnsAnOutsideCancellationIntoAnError_ExceptionGroupAndTheCancellationIsKept() => AioTest.Run(async () =>
    {
        var log = await CancelledFromOutside(steps => TaskGroup.Run(async tg =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { throw new FormatException("converted"); }
        }));
        Assert.Equal(["converted", "cancelled"], log);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_11, test_taskgroup_12 (nested groups cancelled from outside while children fail)")]
    public void Run_NestedGroupsCancelledFromOutsideAndAnInnerChildFails_TheCancellationOutlivesTheOuterGroup(bool outerBodyCatches) => AioTest.Run(async () =>
    {
        var log = await CancelledFromOutside(async steps =>
        {
            await TaskGroup.Run(async outer =>
            {
                try
                {
                    await TaskGroup.Run(async inner =>
                    {
                        _ = inner.CreateTask(FailInCleanup);
                        await Aio.Sleep(10);
                    });
                }
                catch (ExceptionGroup) when (outerBodyCatches) { steps.Add("inner group caught"); }
            });
            steps.Add("outer group returned");
        });
        // Not caught, the inner group's ExceptionGroup comes out inside the outer group's.
        string[] expected = outerBodyCatches ? ["inner group caught", "outer group returned", "cancelled"] : ["cleanup failed", "cancelled"];
        Assert.Equal(expected, log);
    });

    [Fact]
    [Trait("asyncio", "uncancel() reaching zero withdraws the cancellation a task group kept (3.13 resets _must_cancel)")]
    public void Run_KeptCancellationWithdrawnByUncancel_NextAwaitInTheEnclosingTimeoutGoesOn() => AioTest.Run(async () =>
    {
        var task = Aio.CreateTask(async () =>
        {
            await Aio.Timeout(100, async () =>
            {
                try
                {
                    await TaskGroup.Run(async tg =>
                    {
                        _ = tg.CreateTask(FailInCleanup);
                        await Aio.Sleep(10);
                    });
                }
                catch (ExceptionGroup)
                {
                    Assert.Equal(0, Aio.CurrentTask!.Uncancel());
                }
                await Aio.Sleep(1);   // the withdrawn cancellation does not interrupt this
            });
            return "done";
        });
        await Aio.Sleep(1);
        task.Cancel();
        Assert.Equal("done", await task);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    [Trait("asyncio", "uncancel() withdraws a kept cancellation only at zero, and a timeout's own request counts until its exit")]
    public void Run_TimeoutExpiryKeptByAGroup_TheTasksUncancelToZeroDoesNotWithdrawIt(bool cancelledBeforeTheTimeout) => AioTest.Run(async () =>
    {
        // The timeout expires inside the group, a child's error wins, and the group keeps the expiry for the
        // next await. asyncio counts the timeout's request in cancelling(), so the task's own Uncancel leaves
        // the count above zero and the mark in place: the next await is cancelled and the timeout raises.
        var me = Aio.CurrentTask!;
        var log = new List<string>();
        if (cancelledBeforeTheTimeout)
        {
            me.Cancel();
            try { await Aio.Sleep(1); } catch (CancelledError) { log.Add("swallowed"); }
        }
        double t0 = Now;
        var e = await Record.ExceptionAsync(() => Aio.Timeout(1, async () =>
        {
            try
            {
                await TaskGroup.Run(async tg =>
                {
                    _ = tg.CreateTask(FailInCleanup);
                    await Aio.Sleep(10);
                });
            }
            catch (ExceptionGroup)
            {
                log.Add("group failed");
                // Without an earlier request, the task cancels itself now (a second "must cancel" beside the
                // kept one): either way, Uncancel brings the task's own count to zero.
                if (!cancelledBeforeTheTimeout) me.Cancel();
                Assert.Equal(0, me.Uncancel());
            }
            await Aio.Sleep(5);
            log.Add("slept");
        }));
        Assert.IsType<TimeoutException>(e);
        Assert.Equal(1, Now - t0, 6);
        Assert.Equal(cancelledBeforeTheTimeout ? ["swallowed", "group failed"] : ["group failed"], log);
        await Aio.Sleep(1); // nothing left over
    });

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [Trait("asyncio", "uncancel() reaching zero withdraws the one pending cancellation; until then it stays, delivered once")]
    public void Run_KeptCancellationAndASecondCancel_OnePendingUntilUncancelledToZero(int uncancels) => AioTest.Run(async () =>
    {
        // The group keeps the task's cancellation in the timeout's scope, then the task cancels itself while
        // nothing is pending (a mark in its root scope): asyncio has one "must cancel" for both requests.
        var log = new List<string>();
        var task = Aio.CreateTask(async () =>
        {
            var me = Aio.CurrentTask!;
            await Aio.Timeout(100, async () =>
            {
                try
                {
                    await TaskGroup.Run(async tg =>
                    {
                        _ = tg.CreateTask(FailInCleanup);
                        await Aio.Sleep(10);
                    });
                }
                catch (ExceptionGroup) { me.Cancel(); }
                for (int i = 0; i < uncancels; i++) me.Uncancel();
                log.Add($"count {me.Cancelling()}");
                try { await Aio.Sleep(1); log.Add("slept"); } catch (CancelledError) { log.Add("cancelled"); }
                try { await Aio.Sleep(1); log.Add("slept"); } catch (CancelledError) { log.Add("cancelled again"); }
            });
        });
        await Aio.Sleep(1);
        task.Cancel();
        await task;
        Assert.Equal(uncancels == 2 ? ["count 0", "slept", "slept"] : [$"count {2 - uncancels}", "cancelled", "slept"], log);
    });

    [Fact]
    [Trait("asyncio", "taskgroups: the re-cancelled task interrupts the enclosing group's wait for its children")]
    public void Run_InnerGroupKeepsACancellationThatTheOuterBodyCatches_OuterChildrenAreCancelled() => AioTest.Run(async () =>
    {
        AioTask<int>? outerChild = null;
        var log = new List<string>();
        var task = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(async outer =>
                {
                    outerChild = outer.CreateTask(() => After(100, 1));
                    try
                    {
                        await TaskGroup.Run(async inner =>
                        {
                            _ = inner.CreateTask(FailInCleanup);
                            await Aio.Sleep(10);
                        });
                    }
                    catch (ExceptionGroup) { log.Add("inner group caught"); }
                });
            }
            catch (CancelledError) { log.Add("outer group cancelled"); }
            await Aio.Sleep(1);   // one cancellation, one error
            log.Add("went on");
        });
        await Aio.Sleep(1);
        double t0 = Now;
        task.Cancel();
        await task;
        Assert.Equal(["inner group caught", "outer group cancelled", "went on"], log);
        Assert.True(outerChild!.IsCancelled);
        Assert.Equal(1, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: test_taskgroup_15, test_taskgroup_16")]
    public void Run_ChildFailsWhileTheBodyCleansUpAfterAnOutsideCancellation_ExceptionGroupWins() => AioTest.Run(async () =>
    {
        bool cleanupInterrupted = false;
        var task = Aio.CreateTask(() => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(() => FailAfter(3, "crash"));
            try { await Aio.Sleep(10); }
            catch (CancelledError)
            {
                try { await Aio.Sleep(5); }
                catch (CancelledError) { cleanupInterrupted = true; throw; }
            }
        }));
        await Aio.Sleep(1);
        double t0 = Now;
        task.Cancel();
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(async () => await task);
        Assert.Equal("crash", Assert.Single(eg.Exceptions).Message);
        Assert.True(cleanupInterrupted);
        Assert.Equal(2, Now - t0, 6);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    [Trait("asyncio", "test_taskgroups: test_cancellation_does_not_leak_out_of_tg")]
    public void Run_ChildFailsAfterTheBodyEnded_CallersNextAwaitIsNotCancelled(bool eager) => AioTest.Run(async () =>
    {
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg =>
        {
            tg.CreateTask(() => throw new FormatException("at once"));
        }));
        Assert.Equal("at once", Assert.Single(eg.Exceptions).Message);
        await Aio.Sleep(0);
        await Aio.Sleep(1);
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    }, new LoopOptions { VirtualTime = true, EagerTasks = eager });

    [Fact]
    public void Run_InsideATimeoutThatExpires_ChildrenCancelledAndTimeoutRaised() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, () => TaskGroup.Run(async tg =>
        {
            child = tg.CreateTask(() => After(10, 1));
            await Aio.Sleep(10);
        })));
        Assert.Equal(1, Now - t0, 6);
        Assert.True(child!.IsCancelled);
    });

    // ---- lifecycle ----

    [Fact]
    [Trait("asyncio", "test_taskgroups: create_task on a finished group")]
    public void CreateTask_AfterTheGroupFinished_Throws() => AioTest.Run(async () =>
    {
        TaskGroup? group = null;
        await TaskGroup.Run(tg => { group = tg; return Task.CompletedTask; });
        var e = Assert.Throws<InvalidOperationException>(() => { group!.CreateTask(() => Task.CompletedTask); });
        Assert.Contains("finished", e.Message);
    });

    [Fact]
    [Trait("asyncio", "test_taskgroups: create_task on a group that is shutting down")]
    public void CreateTask_WhileShuttingDown_Throws() => AioTest.Run(async () =>
    {
        InvalidOperationException? refused = null;
        await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(() => FailAfter(1, "boom"));
            try { await Aio.Sleep(10); }
            catch (CancelledError)
            {
                refused = Assert.Throws<InvalidOperationException>(() => { tg.CreateTask(() => Task.CompletedTask); });
                throw;
            }
        }));
        Assert.Contains("shutting down", refused!.Message);
    });

    [Fact]
    public void CreateTask_AfterTheBodyEndedWhileChildrenRun_IsAccepted() => AioTest.Run(async () =>
    {
        bool lateDone = false;
        await TaskGroup.Run(tg =>
        {
            _ = tg.CreateTask(async () =>
            {
                await Aio.Sleep(1);
                _ = tg.CreateTask(async () => { await Aio.Sleep(1); lateDone = true; });
            });
            return Task.CompletedTask;
        });
        Assert.True(lateDone);
    });

    [Fact]
    public void Run_BodyReturnsNull_FailsWithInvalidOperation() => AioTest.Run(async () =>
    {
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(_ => null!));
        Assert.IsType<InvalidOperationException>(Assert.Single(eg.Exceptions));
    });

    [Fact]
    public void CreateTask_NamedChild_KeepsTheName() => AioTest.Run(async () =>
    {
        await TaskGroup.Run(tg =>
        {
            Assert.Equal("worker", tg.CreateTask(() => Task.CompletedTask, "worker").Name);
            return Task.CompletedTask;
        });
    });

    [Fact]
    public void Run_SynchronousBody_WaitsForTheChildrenItStarted() => AioTest.Run(async () =>
    {
        var done = new List<int>();
        await TaskGroup.Run(tg =>
        {
            tg.CreateTask(async () => { await Aio.Sleep(2); done.Add(2); });
            tg.CreateTask(async () => { await Aio.Sleep(1); done.Add(1); });
        });
        Assert.Equal([1, 2], done);
        Assert.Equal(2.0, Aio.GetRunningLoop().Time(), 9);
        var e = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg =>
        {
            tg.CreateTask(async () => { await Aio.Sleep(1); throw new FormatException(); });
        }));
        Assert.IsType<FormatException>(Assert.Single(e.Exceptions));
    });
}
